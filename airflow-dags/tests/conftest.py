"""Airflow for the DAG tests: a fresh AIRFLOW_HOME with a migrated SQLite database, the DAG folder of
this project, no examples; set before Airflow is imported anywhere in this session."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parent.parent
_home = tempfile.mkdtemp(prefix="airflow-home-")
os.environ.update(
    AIRFLOW_HOME=_home,
    AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    AIRFLOW__CORE__UNIT_TEST_MODE="False",
    AIRFLOW_CONN_SPARK_DEFAULT='{"conn_type": "spark", "host": "local[2]"}',
    GENPIPE_RETRIES="0",
)
sys.path.insert(0, str(DAGS))


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """AIRFLOW_HOME with its database migrated (what `airflow dags test` needs)."""
    airflow = Path(sys.executable).parent / "airflow"
    out = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True, env=dict(os.environ))
    assert out.returncode == 0, out.stdout + out.stderr
    return Path(_home)
