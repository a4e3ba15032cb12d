"""Exact (brute-force) backend: equals a hand-written numpy dot product; equals Lucene; bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pyserini_splare.index.__main__ import main as index_main
from pyserini_splare.search.__main__ import main as search_main
from pyserini_splare.formats.spaces import PrefixedSpace
from pyserini_splare.formats.sparse import SparseVector
from pyserini_splare.formats.vectors_writer import VectorsWriter
from pyserini_splare.testing import synth

def write_docs(out: Path, rng, n_docs=300, n_features=5000, terms=40, dup_every=25):
    """Random integer-weighted documents (every ``dup_every``-th repeats the previous one: exact ties)."""
    space = PrefixedSpace("L", n_features)
    dense = np.zeros((n_docs, n_features), dtype=np.int64)
    with VectorsWriter(out, space=space, quant_scale=100.0) as w:
        prev = None
        for i in range(n_docs):
            if prev is not None and i % dup_every == 0:
                ids, wts = prev
            else:
                ids = np.sort(rng.choice(n_features // 10, terms, replace=False))  # shared terms -> overlaps
                wts = rng.integers(1, 300, terms) / 100.0
            prev = (ids, wts)
            # ids out of order are fine for the writer; docids deliberately not in index order
            w.write(f"d{(i * 7919) % n_docs:04d}", SparseVector(ids, wts))
            dense[(i * 7919) % n_docs, ids] = np.rint(wts * 100).astype(np.int64)
    return space, dense


def brute_force(dense: np.ndarray, q: dict[str, int], space, k: int):
    """Reference: dot product with every document, sort by (-score, docid)."""
    qv = np.zeros(dense.shape[1], dtype=np.int64)
    for t, w in q.items():
        qv[space.id(t)] = w
    scores = dense @ qv
    docids = [f"d{i:04d}" for i in range(dense.shape[0])]
    ranked = sorted(((docids[i], float(s)) for i, s in enumerate(scores) if s > 0), key=lambda h: (-h[1], h[0]))
    return ranked[:k]


@pytest.fixture(scope="module")
def coll(tmp_path_factory):
    root = tmp_path_factory.mktemp("exact")
    rng = np.random.default_rng(3)
    space, dense = write_docs(root / "vectors", rng)
    assert index_main(["--backend", "exact", "--input", str(root / "vectors"), "--index", str(root / "exact")]) == 0
    queries = {}
    for j in range(15):
        ids = rng.choice(500, 8, replace=False)
        queries[f"q{j}"] = {space.term(int(i)): int(rng.integers(1, 200)) for i in ids}
    qfile = root / "queries.jsonl"
    qfile.write_text("".join(json.dumps({"id": q, "vector": v}) + "\n" for q, v in queries.items()))
    return root, space, dense, queries, qfile


def test_exact_equals_numpy_brute_force(coll):
    from pyserini_splare.search.base import QuantizedQuery
    from pyserini_splare.search.registry import open_searcher

    root, space, dense, queries, _ = coll
    with open_searcher(root / "exact") as s:
        assert s.backend == "exact"
        for threads in (1, 2):
            # the queries' integer weights are impacts in the index's units: declared quantized
            res = s.batch_search({q: QuantizedQuery(v) for q, v in queries.items()}, k=30, threads=threads)
            for qid, q in queries.items():
                assert res[qid] == brute_force(dense, q, space, 30), qid
        # real-valued query weights are quantized with the index's scale (x100)
        q = {t: w / 100 for t, w in queries["q0"].items()}
        assert s.search(q, k=30) == brute_force(dense, queries["q0"], space, 30)
    # many blocks split across threads (15 queries in blocks of at most 4, on 3 threads): same hits
    from pyserini_splare.search.exact import ExactSearcher

    small = ExactSearcher(root / "exact", batch_size=4)
    res = small.batch_search({q: QuantizedQuery(v) for q, v in queries.items()}, k=30, threads=3)
    for qid, q in queries.items():
        assert res[qid] == brute_force(dense, q, space, 30), qid
    # ties exist in this collection (duplicated documents) and are ordered by docid
    top = brute_force(dense, queries["q1"], space, 300)
    assert len({s for _, s in top}) < len(top)


def test_exact_cli_run_matches_reference(coll, tmp_path):
    root, space, dense, queries, qfile = coll
    run = tmp_path / "run.txt"
    assert search_main(["--index", str(root / "exact"), "--query-vectors", str(qfile), "--query-vectors-quantized",
                        "--output", str(run), "--hits", "10"]) == 0
    lines = [ln.split() for ln in run.read_text().splitlines()]
    got = {}
    for qid, _, docid, rank, score, tag in lines:
        got.setdefault(qid, []).append((docid, float(score)))
        assert tag == "exact"
    for qid, q in queries.items():
        assert got[qid] == brute_force(dense, q, space, 10)


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ") and "Traceback" not in "\n".join(err)
    return err[-1]


def test_exact_bad_input(coll, tmp_path, capsys):
    root, space, _, _, qfile = coll
    run = tmp_path / "run.txt"
    # k <= 0
    assert search_main(["--index", str(root / "exact"), "--query-vectors", str(qfile), "--output", str(run),
                        "--hits", "0"]) == 2
    assert "--hits" in _one_line_error(capsys)
    from pyserini_splare._errors import UsageError
    from pyserini_splare.search.exact import ExactSearcher

    with pytest.raises(UsageError, match="k must be positive"):
        ExactSearcher(root / "exact").batch_search({"q": {"L1": 3}}, k=-1)
    # query vectors from another encoder's feature space (SPLADE vocabulary terms)
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text(json.dumps({"id": "q1", "vector": {"hello": 1.2, "world": 0.5}}) + "\n")
    assert search_main(["--index", str(root / "exact"), "--query-vectors", str(foreign), "--output", str(run)]) == 2
    assert "feature space" in _one_line_error(capsys)
    # a term beyond the space's size
    beyond = tmp_path / "beyond.jsonl"
    beyond.write_text(json.dumps({"id": "q1", "vector": {"L5": 1, f"L{space.size}": 2}}) + "\n")
    assert search_main(["--index", str(root / "exact"), "--query-vectors", str(beyond), "--output", str(run)]) == 2
    _one_line_error(capsys)
    # truncated and corrupt index files
    import shutil

    for name, damage in (("postings.npz", "truncate"), ("docids.npy", "truncate"), ("postings.npz", "garbage")):
        bad = tmp_path / f"bad-{name}-{damage}"
        shutil.copytree(root / "exact", bad)
        p = bad / name
        if damage == "truncate":
            p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
        else:
            p.write_bytes(b"not a zip file at all" * 10)
        assert search_main(["--index", str(bad), "--query-vectors", str(qfile), "--output", str(run)]) == 2
        err = _one_line_error(capsys)
        assert "cannot read the exact index" in err or "unreadable docid table" in err
    assert not run.exists()  # no half-written output


@pytest.mark.jvm
def test_lucene_and_exact_rank_identically(tmp_path):
    """Lucene's impact scores are integer dot products: same hits, same scores, same order as exact."""
    from pyserini_splare.search.base import QuantizedQuery
    from pyserini_splare.search.registry import open_searcher

    cfg = synth.SynthConfig(n_features=131072, doc_terms=60, query_terms=12, active_features=3000, seed=5)
    docs, queries = synth.generate(cfg, 400, 12)
    vdir, qfile = synth.write_collection(docs, queries, cfg, tmp_path / "c", 100.0)
    for b in ("lucene", "exact"):
        assert index_main(["--backend", b, "--input", str(vdir), "--index", str(tmp_path / b)]) == 0
    from pyserini_splare.formats.query_vectors import read_query_vectors

    qs = {q: QuantizedQuery(v) for q, v in read_query_vectors(qfile).items()}  # synth writes integer impacts
    with open_searcher(tmp_path / "lucene") as luc, open_searcher(tmp_path / "exact") as ex:
        a, b = luc.batch_search(qs, k=50), ex.batch_search(qs, k=50)
    assert a == b
    assert sum(len(v) for v in a.values()) > 0
