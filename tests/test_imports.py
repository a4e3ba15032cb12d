"""No import-time side effects: `--help` of every CLI imports no torch, starts no JVM, loads no faiss/seismic/ranx."""

import subprocess
import sys

import pytest

CLIS = ["index", "search", "eval", "encode", "fusion", "rerank", "explain", "repro", "demo", "export"]
HEAVY = ("torch", "jnius", "faiss", "seismic", "ranx", "transformers", "pyserini", "numba")

PROBE = """
import runpy, sys
sys.argv = ["prog", "--help"]
try:
    runpy.run_module("pyserini_splare.{name}", run_name="__main__")
except SystemExit as e:
    code = e.code
else:
    code = 0
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
sys.exit(code or 0)
"""


@pytest.mark.parametrize("name", CLIS)
def test_help_is_light_and_teaches(name):
    r = subprocess.run([sys.executable, "-c", PROBE.format(name=name, heavy=HEAVY)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    heavy = r.stderr.rsplit("HEAVY=", 1)[1].strip()
    assert heavy == "", f"`python -m pyserini_splare.{name} --help` imported {heavy}"
    assert "usage:" in r.stdout and "example" in r.stdout.lower()


def test_package_import_is_light():
    r = subprocess.run([sys.executable, "-c",
                        "import sys, pyserini_splare, pyserini_splare.vectors, pyserini_splare.topics, "
                        "pyserini_splare.index, pyserini_splare.search, pyserini_splare.encode, pyserini_splare.eval;"
                        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""
