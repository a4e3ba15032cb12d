"""SIGINT and SIGTERM: one policy for every long command (docs/errors.md).

A signalled command prints one line (``error: interrupted (SIGINT)`` / ``error: terminated (SIGTERM)``),
exits 130 / 143 within 10 s, leaves nothing at its final output path and no ``.partial`` folder --
except ``encode``, whose ``.partial`` holds completed parts that the same command then resumes.

The unit tests call :func:`pyserini_splare._errors.cli_main` in-process; the command tests run the real
CLIs as subprocesses and send the signal at a point observed from outside (an output ``.partial``
folder appearing, the progress bar starting, a first part completed), during the JVM-backed Lucene
build and search, the Rust Seismic build (one native call the main thread cannot leave: the
watchdog's case) and encoding.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pyserini_splare._errors import cli_main
from pyserini_splare._signals import Interrupted

pytestmark = [pytest.mark.slow, pytest.mark.jvm]  # CLIs in child processes, signalled mid-run

DEADLINE_S = 10.0


def _one_line(err: str, signum: int) -> None:
    want = "error: interrupted (SIGINT)" if signum == signal.SIGINT else "error: terminated (SIGTERM)"
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert errors == [want], err[-3000:]
    assert "Traceback" not in err, err[-3000:]


# --------------------------------------------------------------------------------------------
# The policy itself (in-process)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_becomes_one_line_and_exit_code(capsys, signum):
    seen = []

    @cli_main
    def main(argv=None):
        try:
            os.kill(os.getpid(), signum)
            time.sleep(5)
        except Exception:  # an `except Exception` in library code must not swallow the signal
            seen.append("swallowed")
        finally:
            seen.append("cleanup ran")

    t = time.monotonic()
    assert main([]) == 128 + signum
    assert time.monotonic() - t < 2
    assert seen == ["cleanup ran"]
    _one_line(capsys.readouterr().err, signum)


def test_handlers_restored_after_main():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    @cli_main
    def main(argv=None):
        assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
        return 0

    assert main([]) == 0
    assert {s: signal.getsignal(s) for s in before} == before


def test_interrupt_reraised_by_a_library_is_reported_as_interrupt(capsys):
    """Ctrl-C inside transformers' lazy import surfaces as ModuleNotFoundError('... BertForMaskedLM')."""

    @cli_main
    def main(argv=None):
        try:
            raise Interrupted(signal.SIGINT)
        except BaseException as e:
            raise ModuleNotFoundError("Could not import module 'BertForMaskedLM'") from e

    assert main([]) == 130
    _one_line(capsys.readouterr().err, signal.SIGINT)


# --------------------------------------------------------------------------------------------
# The commands (subprocesses)
# --------------------------------------------------------------------------------------------


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYSERINI_SPLARE_PROGRESS"}
    env.update(extra)
    return env


def _signal_when(cmd: list[str], ready, signum: int, cwd: Path, env=None, settle: float = 1.0):
    """Start ``cmd``, wait until ``ready(stderr_so_far, pid)`` holds, wait ``settle`` s, send ``signum``;
    return (exit code, stderr, seconds from signal to exit)."""
    errf = cwd / f"stderr.{time.monotonic_ns()}.txt"
    with open(errf, "w") as ef:
        p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=ef, env=env or _env())
        t0 = time.monotonic()
        while not ready(errf.read_text(errors="replace"), p.pid):
            if p.poll() is not None:
                pytest.fail(f"finished (exit {p.returncode}) before the signal point:\n{errf.read_text()[-3000:]}")
            if time.monotonic() - t0 > 300:
                p.kill()
                pytest.fail("signal point never reached:\n" + errf.read_text()[-3000:])
            time.sleep(0.2)
        time.sleep(settle)
        t = time.monotonic()
        p.send_signal(signum)
        try:
            rc = p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            pytest.fail(f"still running 60 s after {signal.Signals(signum).name}:\n{errf.read_text()[-3000:]}")
        took = time.monotonic() - t
    return rc, errf.read_text(errors="replace"), took


@pytest.fixture(scope="module")
def big_vectors(tmp_path_factory) -> Path:
    """10,000 random documents of 60 terms: builds that last long enough to be interrupted."""
    from pyserini_splare.vectors import PrefixedSpace, SparseVector, VectorsWriter

    root = tmp_path_factory.mktemp("signals")
    rng = np.random.default_rng(0)
    with VectorsWriter(root / "vec", space=PrefixedSpace("L", 5000), quant_scale=100.0) as w:
        for i in range(10_000):
            w.write(f"d{i}", SparseVector(np.sort(rng.choice(5000, 60, replace=False)), rng.integers(1, 300, 60) / 100))
    with open(root / "queries.jsonl", "w") as f:
        for i in range(20_000):
            f.write(json.dumps({"id": f"q{i}", "vector": {f"L{j}": 1.0 for j in rng.choice(5000, 30, replace=False)}})
                    + "\n")
    return root


def _partial_exists(path: Path):
    return lambda err, pid: path.with_name(path.name + ".partial").exists()


def _loaded(library: str):
    """True once the process has mapped ``library`` (e.g. torch's: main() is loading the model)."""
    def ready(err, pid):
        try:
            return library in Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            return False
    return ready


@pytest.mark.parametrize("backend", ["lucene", "seismic"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_index_build_signalled(big_vectors, tmp_path, backend, signum):
    out = tmp_path / "idx"
    cmd = [sys.executable, "-m", "pyserini_splare.index", "--backend", backend, "--input", str(big_vectors / "vec"),
           "--index", str(out)]
    rc, err, took = _signal_when(cmd, _partial_exists(out), signum, tmp_path)
    assert rc == 128 + signum, err[-3000:]
    _one_line(err, signum)
    assert took < DEADLINE_S, took
    assert not out.exists() and not out.with_name("idx.partial").exists()


@pytest.fixture(scope="module")
def lucene_index(big_vectors) -> Path:
    out = big_vectors / "idx.lucene"
    subprocess.run([sys.executable, "-m", "pyserini_splare.index", "--backend", "lucene", "--input",
                    str(big_vectors / "vec"), "--index", str(out)], check=True, capture_output=True, env=_env())
    return out


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("point", ["jvm start", "searching"])
def test_lucene_search_signalled(big_vectors, lucene_index, tmp_path, signum, point):
    out = tmp_path / "run.txt"
    cmd = [sys.executable, "-m", "pyserini_splare.search", "--index", str(lucene_index), "--query-vectors",
           str(big_vectors / "queries.jsonl"), "--output", str(out), "--hits", "1000"]
    if point == "jvm start":
        rc, err, took = _signal_when(cmd, _loaded("libjvm"), signum, tmp_path, settle=0.5)
    else:
        rc, err, took = _signal_when(cmd, lambda err, pid: "search lucene" in err, signum, tmp_path, settle=0.5)
    assert rc == 128 + signum, err[-3000:]
    _one_line(err, signum)
    assert took < DEADLINE_S, took
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("stderr.")) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_encode_signalled_then_resumed(tmp_path, splade_tiny_path, signum):
    corpus = Path(__file__).resolve().parents[1] / "pyserini_splare" / "demo" / "data" / "corpus.jsonl"
    out = tmp_path / "vec"
    cmd = [sys.executable, "-m", "pyserini_splare.encode", "--corpus", str(corpus), "--encoder",
           f"splade:{splade_tiny_path}", "--output", str(out), "--batch-size", "4", "--part-size", "8"]
    env = _env(PYSERINI_SPLARE_TEST_SLEEP="0.3")
    partial = out.with_name("vec.partial")
    first_part = lambda err, pid: any(p.name.startswith("part-") and not p.name.startswith(".")  # noqa: E731
                                 for p in (partial.iterdir() if partial.is_dir() else []))
    rc, err, took = _signal_when(cmd, first_part, signum, tmp_path, env=env, settle=0.0)
    assert rc == 128 + signum, err[-3000:]
    _one_line(err, signum)
    assert took < DEADLINE_S, took
    assert not out.exists() and partial.is_dir()
    kept = sorted(p.name for p in partial.iterdir() if p.name.startswith("part-"))
    assert kept, "completed parts are kept for resuming"
    p = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "resum" in p.stderr.lower(), p.stderr[-3000:]  # a resumed run says so
    assert f"/{sum(1 for _ in open(corpus))} [" in p.stderr, p.stderr[-3000:]  # the progress bar has a total
    assert out.is_dir() and not partial.exists()
    n = sum(1 for f in out.iterdir() if f.name.startswith("part-") for _ in open(f))
    assert n == sum(1 for _ in open(corpus))  # every document, once


def test_encode_signalled_while_loading_the_model(tmp_path, splade_tiny_path):
    """Ctrl-C while torch/transformers import and the model loads: one line, no ModuleNotFoundError trace."""
    corpus = Path(__file__).resolve().parents[1] / "pyserini_splare" / "demo" / "data" / "corpus.jsonl"
    out = tmp_path / "vec"
    cmd = [sys.executable, "-m", "pyserini_splare.encode", "--corpus", str(corpus), "--encoder",
           f"splade:{splade_tiny_path}", "--output", str(out)]
    rc, err, took = _signal_when(cmd, _loaded("libtorch"), signal.SIGINT, tmp_path, settle=0.5)
    assert rc == 130, err[-3000:]
    _one_line(err, signal.SIGINT)
    assert took < DEADLINE_S and not out.exists()
