"""The retraining DAGs as real Airflow (3.x) parses them, and every spark-submit command they build
checked by the job jar's own `validate` through pyspark's real spark-submit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import genpipe_airflow as gp

DAGS = Path(__file__).resolve().parent.parent
ROOT = DAGS.parent
STEPS = ["check_new_data", "preprocess", "train", "evaluate", "promote", "report"]
ENTRIES = gp.load_entries(DAGS / "retraining.yaml")


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(str(DAGS))


def test_the_dag_folder_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert sorted(dagbag.dag_ids) == sorted(f"genpipe_retrain_{e['name']}" for e in ENTRIES)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_each_dag_is_one_chain_of_the_six_steps(dagbag, entry):
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    dag = dagbag.dags[f"genpipe_retrain_{entry['name']}"]
    assert sorted(t.task_id for t in dag.tasks) == sorted(STEPS)
    for upstream, downstream in zip(STEPS, STEPS[1:]):
        assert dag.get_task(upstream).downstream_task_ids == {downstream}
    assert dag.get_task("report").downstream_task_ids == set()
    for step in ["preprocess", "train", "evaluate", "promote"]:
        t = dag.get_task(step)
        assert isinstance(t, SparkSubmitOperator)
        assert t._conn_id == "spark_default" and t._java_class == gp.MAIN_CLASS
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    assert dag.schedule == entry["schedule"]
    t = dag.get_task("train")
    assert t.retry_exponential_backoff and t.on_failure_callback
    # the tests run with GENPIPE_RETRIES=0; the default is the entry's
    assert t.retries == 0


def test_parsing_imports_neither_spark_nor_mlflow_nor_reads_variables():
    """Nothing heavy at parse time: a fresh interpreter parses the folder without importing pyspark or
    mlflow, and with the Variables' backend unreachable it still parses (they are read when tasks run)."""
    code = (
        "import sys, time; t = time.time()\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"b = DagBag({str(DAGS)!r})\n"
        "assert not b.import_errors, b.import_errors\n"
        "print('pyspark' in sys.modules, 'mlflow' in sys.modules)\n"
    )
    env = dict(os.environ, AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:////nonexistent/dir/airflow.db")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "False False"


def submit_commands(dagbag, entry, plan):
    """The spark-submit command lines the DAG's four submit tasks run for this plan (the provider's own hook
    builds them, from the same connection and settings)."""
    dag = dagbag.dags[f"genpipe_retrain_{entry['name']}"]
    commands = {}
    for step in ["preprocess", "train", "evaluate", "promote"]:
        task = dag.get_task(step)
        task.application, task.application_args, task.conf = plan["jar"], plan["args"][step], plan["spark_conf"]
        hook = task._get_hook()
        commands[step] = hook._build_spark_submit_command(task.application)
    return commands


def validate(command, jar, spark_env):
    """Runs the command with `validate` put before the job's arguments: spark-submit starts the jar's main,
    which checks the arguments and the config and exits without running the job."""
    i = command.index(str(jar))
    line = command[: i + 1] + ["validate"] + command[i + 1:]
    return subprocess.run(line, capture_output=True, text=True, env=spark_env, timeout=300)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_every_spark_submit_command_is_accepted_by_the_jar(dagbag, entry, jar, spark_env, tmp_path):
    plan = gp.run_plan(entry, str(ROOT), str(tmp_path / "work"), str(jar), "http://127.0.0.1:5000",
                       "20261201T000000", [], "config:0123")
    for step, command in submit_commands(dagbag, entry, plan).items():
        assert command[0] == "spark-submit" and "--master" in command and gp.MAIN_CLASS in command
        out = validate(command, jar, spark_env)
        assert out.returncode == 0, f"{step}: {' '.join(command)}\n{out.stdout}\n{out.stderr[-3000:]}"
        assert out.stdout.startswith(f"valid: {step} "), out.stdout


def test_a_bad_override_is_refused_by_the_jar_naming_the_key(dagbag, jar, spark_env, tmp_path):
    entry = ENTRIES[0]
    plan = gp.run_plan(entry, str(ROOT), str(tmp_path / "work"), str(jar), "http://127.0.0.1:5000",
                       "20261201T000000", ["train.workers=0"], "")
    out = validate(submit_commands(dagbag, entry, plan)["train"], jar, spark_env)
    assert out.returncode == 2
    assert "train.workers: must be >= 1, got 0" in out.stderr


@pytest.mark.parametrize("text, message", [
    ("- name: a\n  config: c.yaml\n", "'registered_model' is required"),
    ("- name: a\n  config: c.yaml\n  registered_model: m\n  colour: red\n", "unknown key 'colour'"),
    ("- name: a b\n  config: c.yaml\n  registered_model: m\n", "must be letters"),
    ("- name: a\n  config: c.yaml\n  registered_model: m\n  margin: -1\n", "margin must be >= 0"),
    ("- name: a\n  config: c.yaml\n  registered_model: m\n  overrides: [x]\n", "override 'x' is not KEY=VALUE"),
    ("name: a\n", "expected a list"),
])
def test_a_bad_retraining_list_names_the_entry_and_key(tmp_path, text, message):
    f = tmp_path / "retraining.yaml"
    f.write_text(text)
    with pytest.raises(ValueError, match=message) as e:
        gp.load_entries(f)
    assert str(f) in str(e.value)


def test_the_data_fingerprint_follows_the_data(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.png").write_bytes(b"one")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"seed: 1\npreprocess:\n  dataset: captcha\n  input: {raw}\n")
    entry = {"name": "x", "preprocess_config": str(cfg), "overrides": []}
    first = gp.data_fingerprint(entry, str(tmp_path), [])
    assert first == gp.data_fingerprint(entry, str(tmp_path), [])
    (raw / "b.png").write_bytes(b"two")
    second = gp.data_fingerprint(entry, str(tmp_path), [])
    assert second != first
    (raw / "b.png").write_bytes(b"TWO")
    assert gp.data_fingerprint(entry, str(tmp_path), []) != second
    # the rendered set: the seed and the preprocess section are the data
    cfg.write_text("seed: 1\npreprocess:\n  dataset: captcha-render\n")
    rendered = gp.data_fingerprint(entry, str(tmp_path), [])
    assert rendered.startswith("config:")
    assert gp.data_fingerprint(entry, str(tmp_path), ["seed=2"]) != rendered
    assert gp.data_fingerprint(entry, str(tmp_path), ["train.steps=5"]) == rendered
