"""genpipe retraining: one DAG per entry of retraining.yaml (beside this file).

check_new_data -> preprocess -> train -> evaluate -> promote -> report

Every step but the first and the last is a spark-submit of the job jar (SparkSubmitOperator,
connection spark_default: its host is the master, e.g. spark://host:7077, yarn or local[2]).
check_new_data goes on when the data fingerprint differs from the one the champion was trained on,
when the schedule fired, or when the run's conf says {"force": true}; otherwise the run is skipped.
promote registers the new run's model and moves the registered model's champion alias only when
every metric of the entry beats the champion's by the entry's margin (the rule is the jar's
`promote` command). report logs what happened and writes report.md beside the run.

Airflow Variables (all optional): genpipe_home (the project folder: conf/ and the jar; default: the
folder above airflow-dags/), genpipe_jar, genpipe_work (records, runs and caches; a local folder,
hdfs:// or s3a://; default <home>/data/airflow), genpipe_mlflow_uri (default http://127.0.0.1:5000).
A DAG run's conf may give {"force": true, "overrides": ["train.steps=2000"]}.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, Param, Variable, get_current_context, task

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # Airflow puts the DAG folder on sys.path; a bare DagBag or a test may not
    sys.path.insert(0, str(HERE))
import genpipe_airflow as gp  # noqa: E402

log = logging.getLogger("genpipe.retraining")


def settings() -> dict:
    """The Variables, read when a task runs (not at parse time)."""
    home = Variable.get("genpipe_home", default=gp.default_home())
    return {
        "home": home,
        "jar": Variable.get("genpipe_jar", default=os.path.join(home, "jobs", "target", gp.JAR_NAME)),
        "work": Variable.get("genpipe_work", default=os.path.join(home, "data", "airflow")),
        "mlflow_uri": Variable.get("genpipe_mlflow_uri", default="http://127.0.0.1:5000"),
    }


def notify_failure(context) -> None:
    """A failed task (after its retries): the log says which, why and where its log is."""
    ti = context.get("task_instance")
    log.error("genpipe retraining %s failed at %s (try %s): %s; log: %s", context["dag"].dag_id,
              ti.task_id if ti else "?", getattr(ti, "try_number", "?"), context.get("exception"),
              getattr(ti, "log_url", ""))


class PlannedSparkSubmit(SparkSubmitOperator):
    """A spark-submit of the job jar whose application arguments and settings come from the run's plan
    (check_new_data's result), so the arguments the DAG submits are exactly the ones run_plan builds."""

    def __init__(self, *, step: str, **kwargs):
        super().__init__(application="", **kwargs)
        self.step = step

    def execute(self, context):
        plan = context["ti"].xcom_pull(task_ids="check_new_data")
        self.application = plan["jar"]
        self.application_args = plan["args"][self.step]
        self.conf = plan["spark_conf"]
        return super().execute(context)


def make_dag(entry: dict) -> DAG:
    name = entry["name"]


    with DAG(
        dag_id=f"genpipe_retrain_{name}",
        description=f"Retrain {entry['config']} and promote {entry['registered_model']}@{gp.ALIAS} when it wins",
        schedule=entry["schedule"],
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        default_args={
            # GENPIPE_RETRIES (read at parse time) lets a test or a debugging session fail at once
            "retries": int(os.environ.get("GENPIPE_RETRIES", entry.get("retries", 2))),
            "retry_delay": timedelta(minutes=2),
            "retry_exponential_backoff": True,
            "max_retry_delay": timedelta(minutes=30),
            "on_failure_callback": notify_failure,
        },
        params={
            "force": Param(False, type="boolean", description="retrain even when the data has not changed"),
            "overrides": Param([], type="array", description="extra --set KEY=VALUE for every step"),
        },
        tags=["genpipe", "retraining"],
        doc_md=__doc__,
    ) as dag:

        @task.short_circuit
        def check_new_data():
            """The run's plan when there is something to do; False (the rest is skipped) when not."""
            ctx = get_current_context()
            s = settings()
            overrides = list(ctx["params"].get("overrides") or [])
            fingerprint = gp.data_fingerprint(entry, s["home"], overrides)
            champ = gp.champion(s["mlflow_uri"], entry["registered_model"])
            trained_on = champ["tags"].get("data_fingerprint") if champ else None
            scheduled = ctx["dag_run"].run_type == "scheduled"
            force = bool(ctx["params"].get("force"))
            if trained_on == fingerprint and not (scheduled or force):
                log.info("no new data: %s@%s (version %s) was trained on %s; trigger with {\"force\": true} to"
                         " retrain anyway", entry["registered_model"], gp.ALIAS, champ["version"], fingerprint)
                return False
            log.info("data %s; champion trained on %s; scheduled %s, force %s: retraining", fingerprint, trained_on,
                     scheduled, force)
            return gp.run_plan(entry, s["home"], s["work"], s["jar"], s["mlflow_uri"], ctx["ts_nodash"],
                               overrides, fingerprint)

        def submit(step: str) -> SparkSubmitOperator:
            return PlannedSparkSubmit(
                step=step,
                task_id=step,
                conn_id="spark_default",
                java_class=gp.MAIN_CLASS,
                name=f"genpipe {step} {name} {{{{ ts_nodash }}}}",
                env_vars={"OMP_NUM_THREADS": "1"},
            )

        @task
        def report():
            """What this run did, from MLflow: the new run's metrics and the alias after promote."""
            ctx = get_current_context()
            p = ctx["ti"].xcom_pull(task_ids="check_new_data")
            run = gp.run_by_name(p["mlflow_uri"], p["experiment"], p["run_name"])
            champ = gp.champion(p["mlflow_uri"], p["registered_model"])
            lines = [f"# genpipe retraining {name}, {ctx['ts']}", "",
                     f"- run: {p['run_name']} ({run['info']['run_id'] if run else 'not found in MLflow'})",
                     f"- data: {p['fingerprint']}"]
            if run:
                for m in entry["metrics"]:
                    key = m.removeprefix("max:").removeprefix("min:")
                    lines.append(f"- {key}: {run['metrics'].get(key)}")
                lines.append(f"- decision: {run['tags'].get('genpipe.promotion', 'none recorded')}")
            lines.append(f"- {p['registered_model']}@{gp.ALIAS}: "
                         + (f"version {champ['version']} (run {champ.get('run_id')})" if champ else "none"))
            text = "\n".join(lines) + "\n"
            log.info("\n%s", text)
            if "://" not in p["run"]:
                target = Path(p["run"]).parent / "report.md"
                tmp = target.with_suffix(".md.tmp")
                tmp.write_text(text)
                tmp.replace(target)
            return {"run_id": run["info"]["run_id"] if run else None,
                    "champion_version": champ["version"] if champ else None,
                    "promoted": bool(champ and run and champ.get("run_id") == run["info"]["run_id"])}

        (check_new_data() >> submit("preprocess") >> submit("train") >> submit("evaluate") >> submit("promote")
         >> report())
    return dag


for _entry in gp.load_entries(HERE / "retraining.yaml"):
    globals()[f"genpipe_retrain_{_entry['name'].replace('-', '_')}"] = make_dag(_entry)
