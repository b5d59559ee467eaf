"""conf/spark/*.properties: every file parses as spark-submit reads it (KEY VALUE per line), and the
JVM flags Spark and ND4J need on JDK 17 are exactly the pom's <jvm.flags> (one list, kept in step here)."""

from __future__ import annotations

import re

import pytest

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted((ROOT / "conf" / "spark").glob("*.properties"))


def properties(path):
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, value = re.split(r"\s+", line, maxsplit=1)
            out[key] = value
    return out


def test_there_are_settings_for_every_kind_of_cluster():
    assert {p.stem for p in FILES} == {"local", "standalone", "yarn", "kubernetes", "gpu"}


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_the_jvm_flags_are_the_poms(path):
    flags = re.search(r"<jvm.flags>(.*)</jvm.flags>", (ROOT / "pom.xml").read_text()).group(1)
    props = properties(path)
    if path.stem == "gpu":  # added on top of another file
        assert props["spark.executor.resource.gpu.amount"] == "1"
        assert props["spark.task.resource.gpu.amount"] == "1"
        return
    assert props["spark.driver.extraJavaOptions"] == flags
    assert props["spark.executor.extraJavaOptions"] == flags
    assert props["spark.executorEnv.OMP_NUM_THREADS"] == "1"
