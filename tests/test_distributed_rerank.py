"""rerank --ray: scores on a local Ray cluster (2 CPU actors) equal single-process scores for every pair;
a killed actor is restarted and its pairs retried; bad --ray input is one line, exit 2."""

from __future__ import annotations

import json

import pytest

from conftest import require_extra  # noqa: E402

ray = require_extra("ray", "ray")  # an extra: CI installs it (setup.py "test" extra)

from pyserini_splare._errors import UsageError  # noqa: E402
from pyserini_splare.rerank.on_ray import deal_batches  # noqa: E402
from pyserini_splare.rerank.__main__ import main  # noqa: E402
from test_rerank import tiny_qwen3_dir  # noqa: E402,F401  (the tiny random Qwen3 reranker fixture)

pytestmark = pytest.mark.ray

WORDS = "cats dogs purr bark search query web passage small animal mail news the a of".split()


@pytest.fixture(scope="module")
def ray_local():
    # log_to_driver=False as the CLI does: actor output printed later would land in another test's stderr
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield ray
    ray.shutdown()


def _inputs(tmp_path, n_queries=4, depth=9):
    import random

    rng = random.Random(7)
    docs = [{"id": f"d{i}", "text": " ".join(rng.choices(WORDS, k=rng.randint(1, 40)))} for i in range(30)]
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (tmp_path / "topics.tsv").write_text("".join(f"q{q}\t{' '.join(rng.choices(WORDS, k=3))}\n" for q in range(n_queries)))
    lines = []
    for q in range(n_queries):
        for r, d in enumerate(rng.sample(range(30), depth), 1):
            lines.append(f"q{q} Q0 d{d} {r} {100 - r} bm25\n")
    (tmp_path / "run.txt").write_text("".join(lines))
    return ["--run", str(tmp_path / "run.txt"), "--topics", str(tmp_path / "topics.tsv"),
            "--corpus", str(tmp_path / "corpus.jsonl")]


def _scores(path):
    return {(l.split()[0], l.split()[2]): float(l.split()[4]) for l in path.read_text().splitlines()}


def test_deal_batches_covers_every_pair_once():
    lengths = [5, 50, 7, 300, 1, 9, 80, 80, 2, 11]
    for bs in (1, 2, 3, 16):
        for w in (1, 2, 3, 4):
            shares = deal_batches(lengths, bs, w)
            assert sorted(i for s in shares for i in s) == list(range(len(lengths)))
    # longest first: 3 (300), 6, 7 (80), 1 (50), 9, 5, 2, 0, 8, 4 -> batches [3,6] [7,1] [9,5] [2,0] [8,4], dealt in turn
    assert deal_batches(lengths, 2, 2) == [[3, 6, 9, 5, 8, 4], [7, 1, 2, 0]]


def test_ray_scores_equal_single_process(tmp_path, tiny_qwen3_dir, ray_local):
    base = _inputs(tmp_path) + ["--model", str(tiny_qwen3_dir), "--depth", "9", "--batch-size", "2"]
    one, many = tmp_path / "one.txt", tmp_path / "ray.txt"
    assert main(base + ["--output", str(one)]) == 0
    assert main(base + ["--output", str(many), "--ray", "local", "--ray-workers", "2"]) == 0
    a, b = _scores(one), _scores(many)
    assert a.keys() == b.keys() and len(a) == 36
    # Batches are re-formed per actor, so padding differs; a pair's score may move in the last float bits.
    for k in a:
        assert b[k] == pytest.approx(a[k], abs=1e-6), k
    assert [l.split()[2] for l in one.read_text().splitlines()] == [l.split()[2] for l in many.read_text().splitlines()]


def test_killed_actor_is_restarted_and_its_pairs_retried(tiny_qwen3_dir, ray_local):
    import os
    import signal

    from pyserini_splare.rerank.on_ray import RayReranker
    from pyserini_splare.rerank import Qwen3Reranker

    docs = [" ".join(WORDS[i:i + 5 + i]) for i in range(12)]
    ref = Qwen3Reranker(str(tiny_qwen3_dir)).score("cats purr", docs, batch_size=2)
    r = RayReranker(ray_local, {"model": str(tiny_qwen3_dir)}, workers=2)
    try:
        pids = r.pids()
        os.kill(pids[0], signal.SIGKILL)
        got = r.score("cats purr", docs, batch_size=2)
        assert got == pytest.approx(ref, abs=1e-6)
        assert r.pids()[0] != pids[0]  # a new process holds the restarted actor
    finally:
        r.close()


def test_bad_ray_input_is_one_line(tmp_path, tiny_qwen3_dir, capsys, monkeypatch):
    base = _inputs(tmp_path) + ["--model", str(tiny_qwen3_dir), "--depth", "3", "--output", str(tmp_path / "o.txt")]
    cases = [(["--ray", "local", "--ray-workers", "0"], "--ray-workers must be >= 1"),
             (["--ray", "127.0.0.1:1"], "cannot reach the Ray cluster at 127.0.0.1:1"),
             (["--ray", "nonsense"], "expected local, auto, HOST:PORT")]
    for extra, msg in cases:
        assert main(base + extra) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and msg in err and err.count("\n") == 1, err
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # as if the extra were not installed
    assert main(base + ["--ray", "local"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --ray needs Ray") and ".[ray]" in err and err.count("\n") == 1
    assert not (tmp_path / "o.txt").exists()
