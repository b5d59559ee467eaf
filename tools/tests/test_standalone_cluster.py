"""spark-submit of the job jar on a real Spark standalone cluster (Master + Worker from pyspark's
3.5.3 distribution, on 127.0.0.1), with the settings of conf/spark/standalone.properties, exactly as
the README's cluster section says: preprocess -> train with 2 executors of 1 core (barrier mode, the
default), one executor killed with SIGKILL mid-training -> the same training in rounds mode -> evaluate.
The runs must finish with the exact example count, and say their averaging overhead; the Master names
each application after its command."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STEPS, WORKERS, BATCH = 600, 2, 64


class Cluster:
    def __init__(self, spark_home: Path, env: dict, folder: Path, free_port):
        self.env = dict(env, SPARK_WORKER_DIR=str(folder / "worker"), SPARK_LOG_DIR=str(folder / "logs"),
                        SPARK_NO_DAEMONIZE="1")
        self.port, self.ui = free_port(), free_port()
        self.master_url = f"spark://127.0.0.1:{self.port}"
        cls = str(spark_home / "bin" / "spark-class")
        self.procs = [subprocess.Popen([cls, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port",
                                        str(self.port), "--webui-port", str(self.ui)],
                                       env=self.env, stdout=open(folder / "master.log", "w"), stderr=subprocess.STDOUT)]
        self.wait(lambda s: s.get("status") == "ALIVE", "the Master")
        self.procs.append(subprocess.Popen([cls, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                                            "--cores", "2", "--memory", "10g", "--webui-port", str(free_port()),
                                            "--work-dir", str(folder / "worker"), self.master_url],
                                           env=self.env, stdout=open(folder / "worker.log", "w"),
                                           stderr=subprocess.STDOUT))
        self.wait(lambda s: sum(w["state"] == "ALIVE" for w in s.get("workers", [])) == 1, "the Worker")

    def state(self) -> dict:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ui}/json/", timeout=5) as r:
                return json.load(r)
        except OSError:
            return {}

    def wait(self, ready, what, seconds=120):
        deadline = time.time() + seconds
        while not ready(self.state()):
            if time.time() > deadline or any(p.poll() is not None for p in self.procs):
                raise RuntimeError(f"{what} did not come up")
            time.sleep(0.5)

    def stop(self):
        for p in reversed(self.procs):
            p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture(scope="module")
def cluster(spark_home, spark_env, tmp_path_factory, free_port):
    c = Cluster(spark_home, spark_env, tmp_path_factory.mktemp("cluster"), free_port)
    yield c
    c.stop()


def submit(cluster, jar, env, *args, on_line=None, timeout=900):
    """spark-submit --master spark://... --properties-file conf/spark/standalone.properties --class ... JAR ARGS"""
    cmd = ["spark-submit", "--master", cluster.master_url, "--properties-file",
           str(ROOT / "conf" / "spark" / "standalone.properties"), "--class", "org.genpipe.jobs.Cli", str(jar), *args]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    lines = []
    timer = threading.Timer(timeout, p.kill)
    timer.start()
    for line in p.stdout:
        lines.append(line)
        if on_line:
            on_line(line)
    p.wait()
    timer.cancel()
    out = "".join(lines)
    assert p.returncode == 0, f"{' '.join(cmd)}\nexit {p.returncode}\n{out[-6000:]}"
    return out


def trained(out: str) -> str:
    """The run's closing line, checked: every step once, every example once (nothing counted twice, nothing lost)."""
    m = re.search(r"trained ([\d,]+) steps \(([\d,]+) examples\) in ([\d.]+) s; compute ([\d.]+) s, averaging overhead "
                  r"([\d.]+)%", out)
    assert m, out[-3000:]
    assert int(m.group(1).replace(",", "")) == STEPS
    assert int(m.group(2).replace(",", "")) == STEPS * WORKERS * BATCH
    return m.group(0)


def executor_pids() -> list[int]:
    import psutil  # Airflow's dependency, in .venv-tools

    pids = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        if "org.apache.spark.executor.CoarseGrainedExecutorBackend" in (p.info["cmdline"] or []):
            pids.append(p.info["pid"])
    return sorted(pids)


def test_preprocess_train_with_a_killed_executor_and_evaluate_on_a_standalone_cluster(cluster, jar, spark_env,
                                                                                      tmp_path):
    records, run, mlruns = tmp_path / "records", tmp_path / "run", tmp_path / "mlruns"
    common = ["--config", "conf/quickstart.yaml", "--set", f"tracking.uri={mlruns}"]
    out = submit(cluster, jar, spark_env, "preprocess", *common, "--set", f"preprocess.output={records}")
    assert "wrote 6000 records" in out

    killed = {}

    def kill_one_executor_after_the_first_checkpoint(line):
        # the first checkpoint is written after 20 rounds (200 steps); then one executor is SIGKILLed
        if not killed and (run / "checkpoints").is_dir() and any((run / "checkpoints").glob("step-*")):
            pids = executor_pids()
            if len(pids) == WORKERS:
                os.kill(pids[0], signal.SIGKILL)
                killed["pid"], killed["at"] = pids[0], time.time()

    watcher_stop = threading.Event()

    def watch():
        while not watcher_stop.is_set() and not killed:
            kill_one_executor_after_the_first_checkpoint("")
            time.sleep(0.2)

    t = threading.Thread(target=watch)
    t.start()
    try:
        out = submit(cluster, jar, spark_env, "train", *common, "--set", f"train.records={records}",
                     "--set", f"train.output={run}", "--set", f"train.steps={STEPS}")
    finally:
        watcher_stop.set()
        t.join()
    assert killed, "no executor was killed: the run ended before its first checkpoint"
    print(f"standalone cluster, 2 executors x 1 core, barrier mode (the default), one executor killed: "
          f"{trained(out)}")
    assert "averaging in rounds instead" not in out, out[-3000:]

    # the same training in rounds mode (a Spark job per round), undisturbed: the overhead to compare with
    out = submit(cluster, jar, spark_env, "train", *common, "--set", f"train.records={records}",
                 "--set", f"train.output={tmp_path / 'run-rounds'}", "--set", f"train.steps={STEPS}",
                 "--set", "train.averaging.mode=rounds")
    print(f"standalone cluster, 2 executors x 1 core, rounds mode: {trained(out)}")

    out = submit(cluster, jar, spark_env, "evaluate", *common, "--checkpoint", str(run),
                 "--set", f"evaluate.cache={tmp_path / 'cache'}")
    fid = re.search(r"fid_domain_gen_600_test +([\d.]+)", out)
    assert fid and float(fid.group(1)) > 0, out[-3000:]

    apps = [a["name"] for a in cluster.state().get("completedapps", [])]
    assert f"genpipe preprocess captcha-render -> {records}" in apps
    assert f"genpipe train beta-vae -> {run}" in apps
    assert f"genpipe evaluate {run}" in apps
