"""The quickstart retraining DAG end to end with `airflow dags test` (real Airflow 3), pyspark's real
spark-submit in local mode running the job jar, and a real MLflow server: the first run registers a
version and gives it the champion alias; a forced, clearly worse run (10 training steps) is evaluated
but leaves the alias where it is; a run with no new data is skipped after check_new_data."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

MODEL = "genpipe-quickstart-beta-vae"
FID = "fid_domain_gen_600_test"


def dags_test(env, date, conf, log: Path):
    airflow = Path(sys.executable).parent / "airflow"
    out = subprocess.run([str(airflow), "dags", "test", "genpipe_retrain_quickstart", date, "-c", json.dumps(conf)],
                         capture_output=True, text=True, env=env, timeout=900)
    log.write_text(out.stdout + out.stderr)
    finished = re.findall(r"DagRun Finished: .*?state=(\w+)", out.stdout + out.stderr)
    assert finished, f"no DagRun finished (exit {out.returncode}); log: {log}\n{(out.stdout + out.stderr)[-4000:]}"
    # `airflow dags test` exits 0 for a failed run too: the run's state is what counts
    assert finished[-1] == "success", f"DagRun {finished[-1]}; log: {log}\n{(out.stdout + out.stderr)[-6000:]}"
    return out.stdout + out.stderr


def test_retraining_registers_then_keeps_then_skips(airflow_home, jar, spark_env, mlflow_server, tmp_path):
    work = tmp_path / "work"
    env = dict(spark_env, AIRFLOW_VAR_GENPIPE_WORK=str(work), AIRFLOW_VAR_GENPIPE_MLFLOW_URI=mlflow_server.uri,
               AIRFLOW_VAR_GENPIPE_JAR=str(jar))

    # 1: no champion yet -> registered as version 1 and given the alias
    dags_test(env, "2026-12-01T00:00:00+00:00", {"overrides": ["train.steps=200"]}, tmp_path / "run1.log")
    champ = mlflow_server.get("registered-models/alias", name=MODEL, alias="champion")["model_version"]
    assert champ["version"] == "1" and champ["status"] == "READY"
    tags = {t["key"]: t["value"] for t in champ["tags"]}
    assert tags["data_fingerprint"].startswith("config:")
    assert re.fullmatch(r"[0-9a-f]{64}", tags["data_digest"])
    assert float(tags[f"metric.{FID}"]) > 0 and "git_commit" in tags
    run1 = mlflow_server.get("runs/get", run_id=champ["run_id"])["run"]
    assert run1["info"]["run_name"] == "quickstart-20261201T000000" and run1["info"]["status"] == "FINISHED"
    metrics1 = {m["key"]: m["value"] for m in run1["data"]["metrics"]}
    assert FID in metrics1 and "kid_domain_gen_600_test" in metrics1
    run1_tags = {t["key"]: t["value"] for t in run1["data"]["tags"]}
    assert run1_tags["genpipe.promotion"].startswith(f"promoted: {MODEL} version 1 is now @champion")
    # the version's source is the run's model/ artifact, and it is there
    assert champ["source"].endswith(f"/{champ['run_id']}/artifacts/model")
    rel = champ["source"].removeprefix("mlflow-artifacts:/")
    with urllib.request.urlopen(f"{mlflow_server.uri}/api/2.0/mlflow-artifacts/artifacts?path={rel}") as r:
        files = {f["path"] for f in json.load(r)["files"]}
    assert files == {"checkpoint.json", "state.bin"}
    report = (work / "quickstart" / "20261201T000000" / "report.md").read_text()
    assert "version 1" in report and FID in report

    # 2: same data, forced, 10 steps: worse by far -> evaluated, not registered, alias unmoved
    log2 = dags_test(env, "2026-12-02T00:00:00+00:00", {"force": True, "overrides": ["train.steps=10"]},
                     tmp_path / "run2.log")
    assert "kept: " in log2
    champ = mlflow_server.get("registered-models/alias", name=MODEL, alias="champion")["model_version"]
    assert champ["version"] == "1"
    versions = mlflow_server.get("model-versions/search", filter=f"name='{MODEL}'")["model_versions"]
    assert [v["version"] for v in versions] == ["1"]
    exp = mlflow_server.get("experiments/get-by-name", experiment_name=MODEL)["experiment"]["experiment_id"]
    runs = json.loads(urllib.request.urlopen(urllib.request.Request(
        f"{mlflow_server.uri}/api/2.0/mlflow/runs/search", data=json.dumps({"experiment_ids": [exp]}).encode(),
        headers={"Content-Type": "application/json"})).read())["runs"]
    assert len(runs) == 2
    run2 = next(r for r in runs if r["info"]["run_name"] == "quickstart-20261202T000000")
    metrics2 = {m["key"]: m["value"] for m in run2["data"]["metrics"]}
    assert metrics2[FID] > metrics1[FID] * 0.98
    tags2 = {t["key"]: t["value"] for t in run2["data"]["tags"]}
    assert tags2["genpipe.promotion"].startswith(f"kept: {MODEL}@champion stays version 1")

    # 3: nothing new and not forced -> check_new_data short-circuits, no run is started
    log3 = dags_test(env, "2026-12-03T00:00:00+00:00", {}, tmp_path / "run3.log")
    assert "no new data" in log3
    runs = json.loads(urllib.request.urlopen(urllib.request.Request(
        f"{mlflow_server.uri}/api/2.0/mlflow/runs/search", data=json.dumps({"experiment_ids": [exp]}).encode(),
        headers={"Content-Type": "application/json"})).read())["runs"]
    assert len(runs) == 2
    assert not (work / "quickstart" / "20261203T000000").exists()
