"""Fixtures of the Python tests (airflow-dags/tests, tools/tests), all against real systems from
.venv-tools: pyspark's Spark distribution, an MLflow server, Airflow. The job jar comes from
`mvn package` (the README's test command builds it before pytest runs)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
JAR = ROOT / "jobs" / "target" / "genpipe-jobs-0.1.0-SNAPSHOT-all.jar"
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(name="free_port", scope="session")
def free_port_fixture():
    """A function giving a free TCP port on 127.0.0.1."""
    return free_port


@pytest.fixture(scope="session")
def jar() -> Path:
    if not JAR.is_file():
        pytest.fail(f"{JAR} is missing: build it with `mvn -B -ntp package` (the README's test command does)")
    return JAR


@pytest.fixture(scope="session")
def spark_home() -> Path:
    """pyspark's distribution (bin/spark-submit, jars/, sbin/): Spark 3.5.3 as the project builds against."""
    import pyspark

    home = Path(pyspark.__file__).parent
    assert (home / "bin" / "spark-submit").is_file(), f"{home} has no bin/spark-submit"
    return home


@pytest.fixture(scope="session")
def spark_env(spark_home) -> dict:
    """The environment of a spark-submit: SPARK_HOME, the venv's bin first on PATH, loopback only."""
    env = dict(os.environ)
    env.update(SPARK_HOME=str(spark_home), SPARK_LOCAL_IP="127.0.0.1", OMP_NUM_THREADS="1",
               PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}")
    return env


class MlflowServer:
    def __init__(self, folder: Path):
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.log = folder / "mlflow-server.log"
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
             "--serve-artifacts", "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", "1"],
            stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        deadline = time.time() + 180
        while True:
            try:
                with urllib.request.urlopen(self.uri + "/health", timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError(f"mlflow server did not come up on {self.uri}:\n{self.log.read_text()}")
            time.sleep(0.5)

    def get(self, endpoint: str, **query) -> dict:
        url = f"{self.uri}/api/2.0/mlflow/{endpoint}?" + urllib.parse.urlencode(query)
        with urllib.request.urlopen(url, timeout=30) as r:
            return json.load(r)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    yield server
    server.stop()
