"""The job jar for spark-submit (jobs/target/genpipe-jobs-*-all.jar): linux-x86_64 natives only, one
ND4J build, none of the natives the TF GraphDef import does not run, and small enough to ship to
every executor."""

from __future__ import annotations

import re
import zipfile

NATIVE = re.compile(r"\.(so(\.\d+)*|dll|dylib|jnilib|a)$")
LINUX_X64 = re.compile(r"(linux-x86_64|linux-x86-64|Linux/x86_64)")
# ND4J's onednn kernels (101 MB compressed), oneDNN (14 MB) and OpenBLAS (14 MB) are 130 MB of it
MAX_MB = 200


def test_the_jar_ships_linux_x86_64_natives_only_and_one_nd4j_build(jar):
    with zipfile.ZipFile(jar) as z:
        names = z.namelist()
        manifest = z.read("META-INF/MANIFEST.MF").decode()
    natives = [n for n in names if NATIVE.search(n) and not n.endswith("/")]
    assert natives, "no native libraries at all"
    assert [n for n in natives if not LINUX_X64.search(n)] == []
    nd4j = [n for n in natives if n.endswith("/libnd4jcpu.so") or n.endswith("/libnd4jcuda.so")]
    assert len(nd4j) == 1, nd4j
    assert "linux-x86_64-onednn" in nd4j[0]
    for unwanted in ("libtensorflow", "libjnitensorflow", "libmklml", "libmkldnn", "libonnxruntime"):
        assert not [n for n in natives if unwanted in n], unwanted
    for wanted in ("org/bytedeco/dnnl/linux-x86_64/libdnnl.so.2", "org/bytedeco/openblas/linux-x86_64/libopenblas.so.0"):
        assert wanted in names
    # the importer's Java side stays: Inception-v3 graphs are read with it
    assert any(n.startswith("org/nd4j/samediff/frameworkimport/tensorflow/") for n in names)
    assert "Main-Class: org.genpipe.jobs.Cli" in manifest


def test_the_jar_is_small_enough_to_ship(jar):
    size_mb = jar.stat().st_size / 2**20
    print(f"job jar: {size_mb:.1f} MiB")
    assert size_mb <= MAX_MB
