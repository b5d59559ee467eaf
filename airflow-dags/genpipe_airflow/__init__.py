"""What the genpipe retraining DAGs need besides Airflow: the entries of retraining.yaml, the
spark-submit argument lists of each step, the data fingerprint, and MLflow REST reads for the
champion. Plain Python (PyYAML and the standard library), so the DAG file stays light at parse time
and the tests call the same functions the DAG runs."""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

JAR_NAME = "genpipe-jobs-0.1.0-SNAPSHOT-all.jar"
MAIN_CLASS = "org.genpipe.jobs.Cli"
ENTRY_KEYS = {
    "name": str,
    "config": str,
    "preprocess_config": str,
    "schedule": (str, type(None)),
    "registered_model": str,
    "metrics": list,
    "margin": (int, float),
    "spark_conf": list,
    "overrides": list,
    "retries": int,
}
REQUIRED = ("name", "config", "registered_model")
ALIAS = "champion"


def default_home() -> str:
    """The project folder: the parent of airflow-dags/."""
    return str(Path(__file__).resolve().parent.parent.parent)


def load_entries(path: str | os.PathLike) -> list[dict]:
    """The retraining list, each entry checked; a bad one raises ValueError naming file, entry and key."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: cannot be read as YAML: {e}") from e
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of retraining entries, got {type(data).__name__}")
    entries, names = [], set()
    for i, entry in enumerate(data):
        where = f"{path} entry {i + 1}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected a mapping, got {type(entry).__name__}")
        for key in entry:
            if key not in ENTRY_KEYS:
                raise ValueError(f"{where}: unknown key '{key}'; valid: {', '.join(ENTRY_KEYS)}")
            if not isinstance(entry[key], ENTRY_KEYS[key]):
                raise ValueError(f"{where}: '{key}' has the wrong type ({type(entry[key]).__name__})")
        for key in REQUIRED:
            if not entry.get(key):
                raise ValueError(f"{where}: '{key}' is required")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", entry["name"]):
            raise ValueError(f"{where}: name '{entry['name']}' must be letters, digits, _ . - (it names the DAG)")
        if entry["name"] in names:
            raise ValueError(f"{where}: name '{entry['name']}' is used twice")
        names.add(entry["name"])
        if entry.get("margin", 0) < 0:
            raise ValueError(f"{where}: margin must be >= 0, got {entry['margin']}")
        full = {
            "schedule": None,
            "preprocess_config": entry["config"],
            "metrics": [],
            "margin": 0.0,
            "spark_conf": [],
            "overrides": [],
            "retries": 2,
            **entry,
        }
        for item in full["overrides"]:
            if not isinstance(item, str) or "=" not in item:
                raise ValueError(f"{where}: override '{item}' is not KEY=VALUE")
        entries.append(full)
    return entries


def absolute(home: str, path: str) -> str:
    """A path of the config relative to the project folder; URIs (s3a://, hdfs://) and absolute paths as they are."""
    if "://" in path or os.path.isabs(path):
        return path
    return os.path.join(home, path)


def read_properties(path: str) -> dict[str, str]:
    """A spark-defaults style file: KEY VALUE or KEY=VALUE per line, # comments."""
    props = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([^\s=:]+)\s*[=:\s]\s*(.*)$", line)
        if not m:
            raise ValueError(f"{path} line {n}: expected KEY VALUE, got {line!r}")
        props[m.group(1)] = m.group(2).strip()
    return props


def spark_conf(entry: dict, home: str) -> dict[str, str]:
    conf: dict[str, str] = {}
    for f in entry["spark_conf"]:
        conf.update(read_properties(absolute(home, f)))
    # the master comes from the Airflow connection (spark_default), not from a file
    conf.pop("spark.master", None)
    return conf


def data_fingerprint(entry: dict, home: str, extra_overrides: list[str]) -> str:
    """sha256 of what the records are made from: the files under preprocess.input (names and bytes),
    or, for the rendered CAPTCHA set (no input), the seed and the preprocess section; remote inputs
    (s3a://, hdfs://) cannot be read here and give 'remote:<uri>', which never matches a champion's."""
    cfg = yaml.safe_load(Path(absolute(home, entry["preprocess_config"])).read_text()) or {}
    overrides = dict(o.split("=", 1) for o in entry["overrides"] + extra_overrides)
    pre = dict(cfg.get("preprocess") or {})
    source = overrides.get("preprocess.input", pre.get("input"))
    h = hashlib.sha256()
    if source:
        if "://" in source and not source.startswith("file:"):
            return f"remote:{source}"
        root = Path(absolute(home, source.removeprefix("file:")))
        if not root.exists():
            raise FileNotFoundError(f"preprocess.input {root} (entry {entry['name']}) does not exist")
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for p in files:
            h.update(str(p.relative_to(root) if root.is_dir() else p.name).encode() + b"\0")
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        return "files:" + h.hexdigest()
    described = {"seed": overrides.get("seed", cfg.get("seed")), "preprocess": pre,
                 "overrides": sorted(k + "=" + v for k, v in overrides.items() if k.startswith("preprocess.")
                                     or k == "seed")}
    h.update(json.dumps(described, sort_keys=True, default=str).encode())
    return "config:" + h.hexdigest()


def run_plan(entry: dict, home: str, work: str, jar: str, mlflow_uri: str, stamp: str,
             extra_overrides: list[str] | None = None, fingerprint: str = "") -> dict:
    """Paths and the spark-submit application arguments of every step of one DAG run."""
    extra = list(extra_overrides or [])
    base = f"{work.rstrip('/')}/{entry['name']}/{stamp}"
    records, run = f"{base}/records", f"{base}/run"
    config = absolute(home, entry["config"])
    pre_config = absolute(home, entry["preprocess_config"])
    run_name = f"{entry['name']}-{stamp}"
    experiment = entry["registered_model"]

    def sets(items):
        out = []
        for item in items:
            out += ["--set", item]
        return out

    user = entry["overrides"] + extra
    tracking = [f"tracking.uri={mlflow_uri}", f"tracking.experiment={experiment}"]
    args = {
        "preprocess": ["preprocess", "--config", pre_config, "--overwrite",
                       *sets([*user, f"preprocess.output={records}"])],
        "train": ["train", "--config", config,
                  *sets([*user, f"train.records={records}", f"train.output={run}", *tracking,
                         f"tracking.runName={run_name}", f"evaluate.cache={work.rstrip('/')}/eval-cache"])],
        "evaluate": ["evaluate", "--config", config, "--checkpoint", run,
                     *sets([*user, *tracking, f"evaluate.cache={work.rstrip('/')}/eval-cache"])],
    }
    promote = ["promote", "--config", config, "--checkpoint", run, "--model", entry["registered_model"],
               "--alias", ALIAS, "--margin", str(entry["margin"]), *sets([*user, *tracking])]
    for m in entry["metrics"]:
        promote += ["--metric", m]
    if fingerprint:
        promote += ["--tag", f"data_fingerprint={fingerprint}"]
    args["promote"] = promote
    return {
        "name": entry["name"],
        "jar": jar,
        "records": records,
        "run": run,
        "run_name": run_name,
        "experiment": experiment,
        "registered_model": entry["registered_model"],
        "mlflow_uri": mlflow_uri,
        "fingerprint": fingerprint,
        "spark_conf": spark_conf(entry, home),
        "args": args,
    }


def mlflow_get(uri: str, endpoint: str, **query) -> dict | None:
    """GET /api/2.0/mlflow/<endpoint>; None when MLflow answers RESOURCE_DOES_NOT_EXIST / 404."""
    url = f"{uri.rstrip('/')}/api/2.0/mlflow/{endpoint}?{urllib.parse.urlencode(query)}"
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        body = e.read().decode(errors="replace")
        if e.code == 404 or "RESOURCE_DOES_NOT_EXIST" in body:
            return None
        raise RuntimeError(f"MLflow {uri} answered GET {endpoint} with HTTP {e.code}: {body[:300]}") from e


def mlflow_post(uri: str, endpoint: str, body: dict) -> dict:
    req = urllib.request.Request(f"{uri.rstrip('/')}/api/2.0/mlflow/{endpoint}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"MLflow {uri} answered POST {endpoint} with HTTP {e.code}: "
                           f"{e.read().decode(errors='replace')[:300]}") from e


def champion(uri: str, model: str, alias: str = ALIAS) -> dict | None:
    """The model version holding the alias, with its tags as a dict; None if there is none yet."""
    found = mlflow_get(uri, "registered-models/alias", name=model, alias=alias)
    if not found:
        return None
    v = found["model_version"]
    v["tags"] = {t["key"]: t["value"] for t in v.get("tags", [])}
    return v


def run_by_name(uri: str, experiment: str, run_name: str) -> dict | None:
    exp = mlflow_get(uri, "experiments/get-by-name", experiment_name=experiment)
    if not exp:
        return None
    found = mlflow_post(uri, "runs/search", {
        "experiment_ids": [exp["experiment"]["experiment_id"]],
        "filter": f"attributes.run_name = '{run_name}'",
        "max_results": 1})
    runs = found.get("runs", [])
    if not runs:
        return None
    run = runs[0]
    run["metrics"] = {m["key"]: m["value"] for m in run.get("data", {}).get("metrics", [])}
    run["tags"] = {t["key"]: t["value"] for t in run.get("data", {}).get("tags", [])}
    return run
