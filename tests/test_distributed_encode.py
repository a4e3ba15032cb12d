"""encode --ray on a local Ray cluster (2 CPU workers) against the single-process encode.

* CACM (its first 240 documents, so that four encodes stay fast on 2 shared CPUs) with SPLADE-tiny:
  the same (id, vector) pairs and meta.json statistics as one process; here even the same part bytes.
* A worker killed mid-run (SIGKILL to its process): the run completes, no id missing or repeated.
* The driver killed mid-run (SIGKILL to its process group, cluster included): the same command resumes,
  leaves the finished parts untouched (counted, and their files are the very same inodes), and the output
  equals the uninterrupted one.
* A dense encoder (tiny random Qwen3-Embedding) gives the single process's embeddings.
* Bad --ray input: one line, exit 2, nothing written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import require_extra  # noqa: E402

ray = require_extra("ray", "ray")  # an extra: CI installs it (setup.py "test" extra)

from pyserini_splare.encode.__main__ import main  # noqa: E402

pytestmark = pytest.mark.ray

N_DOCS, PART = 240, 30


@pytest.fixture(scope="module")
def cacm240(shared_data, tmp_path_factory) -> Path:
    from pyserini_splare.corpus import open_corpus

    out = tmp_path_factory.mktemp("cacm240") / "cacm240.jsonl"
    with open(out, "w") as f:
        for i, d in enumerate(open_corpus(str(shared_data / "cacm" / "cacm.tar.gz"))):
            if i == N_DOCS:
                break
            f.write(json.dumps({"id": d.id, "contents": d.text}) + "\n")
    return out


def _args(corpus, model, out, *extra):
    return ["--corpus", str(corpus), "--encoder", f"splade:{model}", "--output", str(out), "--part-size", str(PART),
            "--batch-size", "16", "--max-length", "128", *extra]


@pytest.fixture(scope="module")
def single(cacm240, splade_tiny_path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single") / "vectors"
    assert main(_args(cacm240, splade_tiny_path, out)) == 0
    return out


def _vectors(d: Path) -> dict[str, dict]:
    got: dict[str, dict] = {}
    for p in sorted(d.glob("part-*.jsonl")):
        for line in p.read_text().splitlines():
            obj = json.loads(line)
            assert obj["id"] not in got, f"duplicate id {obj['id']}"
            got[obj["id"]] = obj["vector"]
    return got


def _no_leftovers(out: Path, single: Path) -> None:
    """The output holds what the single process's holds: no temporary file of a killed writer, no state."""
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in single.iterdir())
    assert not Path(str(out) + ".partial").exists()


def _meta(d: Path) -> dict:
    return json.loads((d / "meta.json").read_text())


def test_ray_equals_single_process(cacm240, splade_tiny_path, single, tmp_path):
    out = tmp_path / "ray"
    assert main(_args(cacm240, splade_tiny_path, out, "--ray", "local", "--ray-workers", "2")) == 0
    a, b = _vectors(single), _vectors(out)
    assert len(a) == N_DOCS - _meta(single)["stats"]["empty_after_quantization"]
    assert sorted(a.items()) == sorted(b.items())
    assert _meta(out)["stats"] == _meta(single)["stats"]
    # Blocks are the single process's parts, encoded in the same batches: the very same bytes.
    for p in sorted(single.glob("part-*.jsonl")):
        assert (out / p.name).read_bytes() == p.read_bytes(), p.name


def _cli(cacm240, model, out, sleep: float, **popen):
    env = {**os.environ, "PYSERINI_SPLARE_TEST_SLEEP": str(sleep), "PYSERINI_SPLARE_PROGRESS": "0"}
    cmd = [sys.executable, "-m", "pyserini_splare.encode",
           *_args(cacm240, model, out, "--ray", "local", "--ray-workers", "2")]
    return subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True, **popen)


def _done_parts(out: Path) -> list[Path]:
    return sorted((Path(str(out) + ".partial") / "_state").glob("part-*.json"))


def _wait_parts(proc, out: Path, n: int, timeout: float = 240) -> None:
    t0 = time.time()
    while len(_done_parts(out)) < n:
        assert proc.poll() is None, proc.stderr.read()
        assert time.time() - t0 < timeout, "no progress"
        time.sleep(0.2)


def _session_pids(session: int, marker: bytes = b"") -> list[int]:
    """Processes of the session the test started the driver in (the driver, its Ray cluster, the actors);
    with ``marker``, only those whose command line holds it."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if os.getsid(int(d.name)) == session and marker in (d / "cmdline").read_bytes():
                pids.append(int(d.name))
        except (OSError, ProcessLookupError):
            continue
    return pids


def _worker_pids(session: int) -> list[int]:
    return _session_pids(session, b"_EncodeWorker")


def _kill_session(session: int) -> None:
    """SIGKILL every process of the session (Ray puts its workers in process groups of their own, so
    killing the driver's group is not enough), then wait until none is left."""
    t0 = time.time()
    while True:
        pids = [p for p in _session_pids(session) if not Path(f"/proc/{p}/stat").read_text().split(") ")[1].startswith("Z")]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        assert time.time() - t0 < 30, "processes survive SIGKILL"
        time.sleep(0.2)


def test_killed_worker_is_retried_without_loss(cacm240, splade_tiny_path, single, tmp_path):
    out = tmp_path / "vectors"
    proc = _cli(cacm240, splade_tiny_path, out, 0.5, start_new_session=True)
    try:
        _wait_parts(proc, out, 1)
        pids = _worker_pids(proc.pid)
        assert pids, "no encoder actor found"
        os.kill(pids[0], signal.SIGKILL)
        assert len(_done_parts(out)) < N_DOCS // PART  # killed mid-run
        _, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            _kill_session(proc.pid)
    assert proc.returncode == 0, err
    _no_leftovers(out, single)
    a, b = _vectors(single), _vectors(out)  # _vectors fails on a repeated id
    assert sorted(a.items()) == sorted(b.items())
    assert _meta(out)["stats"] == _meta(single)["stats"]


def test_killed_driver_resumes_from_finished_parts(cacm240, splade_tiny_path, single, tmp_path, capsys):
    out = tmp_path / "vectors"
    proc = _cli(cacm240, splade_tiny_path, out, 0.5, start_new_session=True)
    try:
        _wait_parts(proc, out, 2)
    finally:
        _kill_session(proc.pid)  # the driver, the local cluster it started and its actors
        proc.wait()
    finished = [p.name[:-len(".json")] for p in _done_parts(out)]
    assert 2 <= len(finished) < N_DOCS // PART
    partial = Path(str(out) + ".partial")
    inodes = {s: (partial / f"{s}.jsonl").stat().st_ino for s in finished}
    assert main(_args(cacm240, splade_tiny_path, out, "--ray", "local", "--ray-workers", "2")) == 0
    err = capsys.readouterr().err
    assert f"{len(finished)} parts already complete" in err
    assert f"in {N_DOCS // PART - len(finished)} parts on 2 Ray workers" in err  # only the rest was encoded
    assert {s: (out / f"{s}.jsonl").stat().st_ino for s in finished} == inodes  # not rewritten
    _no_leftovers(out, single)
    for p in sorted(single.glob("part-*.jsonl")):
        assert (out / p.name).read_bytes() == p.read_bytes(), p.name
    assert _meta(out)["stats"] == _meta(single)["stats"]


def _ray_processes() -> set[int]:
    """Every process of a Ray cluster on this machine (agents, raylet, GCS, workers), by command line."""
    pids = set()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes()
        except OSError:
            continue
        if cmd.startswith(b"ray::") or b"raylet" in cmd or b"gcs_server" in cmd or b"ray/_private/" in cmd:
            pids.add(int(d.name))
    return pids


@pytest.mark.parametrize("when", ["starting", "encoding"])
def test_ctrl_c_is_one_line_and_leaves_no_ray_process(cacm240, splade_tiny_path, tmp_path, when):
    """Ctrl-C (SIGINT to the driver's process group, as a terminal sends it) while the local cluster starts
    or while actors encode: exit 130, one line on stderr (no Ray warning, no core_worker line, no
    traceback), and no process of the cluster left a few seconds later, none started while unwinding."""
    out = tmp_path / "vectors"
    before = _ray_processes()
    proc = _cli(cacm240, splade_tiny_path, out, 0.5, start_new_session=True)
    try:
        if when == "starting":
            t0 = time.time()
            while not (_ray_processes() - before) and time.time() - t0 < 120:
                time.sleep(0.05)  # the cluster's first process is up: ray.init is under way
        else:
            _wait_parts(proc, out, 1)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            _kill_session(proc.pid)
    assert proc.returncode == 130, err
    lines = [ln for ln in err.replace("\r", "\n").splitlines() if ln.strip() and not ln.startswith("encode (ray)")]
    assert lines == ["error: interrupted (SIGINT)"], err
    t0 = time.time()
    while (_ray_processes() - before) and time.time() - t0 < 15:
        time.sleep(0.2)
    assert not (_ray_processes() - before), "Ray processes left behind"


def test_ray_flags_without_ray_and_beyond_this_machine(cacm240, splade_tiny_path, tmp_path, capsys, monkeypatch):
    out = tmp_path / "v"
    cpus = len(os.sched_getaffinity(0))
    cases = [(["--ray-workers", "2"], "--ray-workers describes a Ray run: add --ray local"),
             (["--ray-gpus-per-worker", "1"], "--ray-gpus-per-worker describes a Ray run"),
             (["--ray", "local", "--ray-workers", str(cpus + 1)],
              f"--ray-workers {cpus + 1} x 1 CPU need {cpus + 1} CPUs; this machine has {cpus}")]
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "grpc" else real(name, *a))
    cases.append((["--ray", "ray://127.0.0.1:1"], "connects through Ray Client, which needs grpcio"))
    for extra, msg in cases:
        assert main(_args(cacm240, splade_tiny_path, out, *extra)) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and msg in err and err.count("\n") == 1, err
    assert not out.exists() and not Path(str(out) + ".partial").exists()


@pytest.fixture(scope="module")
def tiny_dense(tmp_path_factory) -> Path:
    """A Qwen3-shaped embedding model with random weights and a word-level tokenizer trained here."""
    from pyserini_splare.testing.tiny_models import qwen3_embedder

    return qwen3_embedder(tmp_path_factory.mktemp("qwen3-embed"), ["a b c d e f g h cat dog search"])


def test_dense_encoder_on_ray_equals_single_process(tiny_dense, tmp_path):
    import random

    import numpy as np

    rng = random.Random(1)
    words = "a b c d e f g h cat dog search".split()
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "text": " ".join(rng.choices(words, k=rng.randint(1, 30)))})
                              + "\n" for i in range(50)))
    base = ["--corpus", str(corpus), "--encoder", f"qwen3-embed:{tiny_dense}", "--part-size", "12", "--batch-size", "4"]
    assert main(base + ["--output", str(tmp_path / "one")]) == 0
    assert main(base + ["--output", str(tmp_path / "ray"), "--ray", "local", "--ray-workers", "2"]) == 0
    for p in sorted((tmp_path / "one").glob("part-*.npy")):
        assert (tmp_path / "ray" / p.name.replace(".npy", ".ids.txt")).read_text() == \
            p.with_name(p.name.replace(".npy", ".ids.txt")).read_text()
        # Actors run torch on 1 thread, the test process on several: float sums may differ in the last bits.
        np.testing.assert_allclose(np.load(tmp_path / "ray" / p.name), np.load(p), rtol=0, atol=1e-6)
    assert _meta(tmp_path / "ray")["count"] == _meta(tmp_path / "one")["count"] == 50


def test_bad_ray_input_is_one_line(cacm240, splade_tiny_path, tmp_path, capsys, monkeypatch):
    out = tmp_path / "v"
    cases = [(["--ray", "local", "--ray-workers", "0"], "--ray-workers must be >= 1"),
             (["--ray", "127.0.0.1:1"], "cannot reach the Ray cluster at 127.0.0.1:1"),
             (["--ray", "local", "--ray-gpus-per-worker", "-1"], "--ray-gpus-per-worker must be >= 0")]
    for extra, msg in cases:
        assert main(_args(cacm240, splade_tiny_path, out, *extra)) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and msg in err and err.count("\n") == 1, err
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    assert main(_args(cacm240, splade_tiny_path, out, "--ray", "local")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --ray needs Ray") and ".[ray]" in err and err.count("\n") == 1
    assert not out.exists() and not Path(str(out) + ".partial").exists()
