"""Two-step search (index --prune-docs/--forward-store, search --rescore): against numpy references.

* the forward store reads back the vectors it was written from (a dense matrix built in the test);
* rescoring N >= the first stage's hits gives, for those candidates, exactly the full-vector dot
  products numpy computes, ordered by (score desc, docid asc); the candidates are numpy's top N of the
  pruned documents with the pruned queries;
* with no pruning two-step search equals full search;
* bad input (a store of other documents, counts or space; no store; N <= 0; bad pruning specs) is one
  ``error:`` line and exit status 2.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pyserini_splare.formats.spaces import PrefixedSpace
from pyserini_splare.formats.sparse import SparseVector, parse_pruning, prune
from pyserini_splare.formats.vectors_writer import VectorsWriter
from pyserini_splare.index.__main__ import main as index_main
from pyserini_splare.search.__main__ import main as search_main

N_DOCS, N_FEATURES, TERMS = 240, 3000, 30


def write_docs(out: Path, rng, ids_of=lambda i: f"d{i:04d}", n_docs=N_DOCS, space=None):
    """Random documents; returns the dense matrix of their integer impacts (row i = document ids_of(i))."""
    space = space or PrefixedSpace("L", N_FEATURES)
    dense = np.zeros((n_docs, space.size), dtype=np.int64)
    with VectorsWriter(out, space=space, quant_scale=100.0) as w:
        for i in range(n_docs):
            ids = np.sort(rng.choice(space.size // 6, TERMS, replace=False))
            wts = rng.integers(1, 400, TERMS) / 100.0
            w.write(ids_of(i), SparseVector(ids, wts))
            dense[i, ids] = np.rint(wts * 100).astype(np.int64)
    return dense


def pruned_dense(dense: np.ndarray, topk: int = 0, mass: float | None = None) -> np.ndarray:
    out = np.zeros_like(dense)
    for i, row in enumerate(dense):
        (nz,) = np.nonzero(row)
        v = prune(SparseVector(nz, row[nz].astype(np.float32)), topk, mass)
        out[i, v.ids] = row[v.ids]
    return out


def ranked(scores: np.ndarray, docids: list[str], k: int, among=None):
    idx = range(len(docids)) if among is None else among
    hits = sorted(((docids[i], int(scores[i])) for i in idx if scores[i] > 0), key=lambda h: (-h[1], h[0]))
    return hits[:k]


def read_run(path: Path) -> dict[str, list[tuple[str, int]]]:
    out: dict[str, list] = {}
    for line in path.read_text().splitlines():
        qid, _, docid, _, score, _ = line.split()
        out.setdefault(qid, []).append((docid, int(round(float(score)))))
    return out


@pytest.fixture(scope="module")
def coll(tmp_path_factory):
    root = tmp_path_factory.mktemp("twostep")
    rng = np.random.default_rng(11)
    dense = write_docs(root / "vectors", rng)
    docids = [f"d{i:04d}" for i in range(N_DOCS)]
    space = PrefixedSpace("L", N_FEATURES)
    queries = {}
    for j in range(12):
        ids = rng.choice(N_FEATURES // 6, 12, replace=False)
        queries[f"q{j}"] = {space.term(int(i)): int(rng.integers(1, 300)) for i in ids}
    qfile = root / "queries.jsonl"
    qfile.write_text("".join(json.dumps({"id": q, "vector": v}) + "\n" for q, v in queries.items()))
    assert index_main(["--backend", "exact", "--input", str(root / "vectors"), "--index", str(root / "full")]) == 0
    assert index_main(["--backend", "exact", "--input", str(root / "vectors"), "--index", str(root / "top8"),
                       "--prune-docs", "topk:8", "--forward-store"]) == 0
    return root, space, dense, docids, queries, qfile


def qvec(q: dict[str, int], space) -> np.ndarray:
    v = np.zeros(space.size, dtype=np.int64)
    for t, w in q.items():
        v[space.id(t)] = w
    return v


def test_parse_pruning():
    assert parse_pruning("topk:40") == (40, None)
    assert parse_pruning("mass:0.9") == (0, 0.9)
    assert parse_pruning("mass:0.5,topk:3") == (3, 0.5)
    for bad in ("topk:0", "mass:0", "mass:1.5", "top:3", "topk", "topk:3,topk:4", "topk:x", ""):
        with pytest.raises(ValueError, match="pruning must be"):
            parse_pruning(bad)


def test_store_round_trip_equals_vectors(coll):
    from pyserini_splare.formats.forward_store import ForwardStore

    root, space, dense, docids, _, _ = coll
    store = ForwardStore(root / "top8" / "forward")
    assert store.documents == N_DOCS and store.postings == int(np.count_nonzero(dense))
    for i in range(N_DOCS):
        ids, q = store.vector(docids[i])
        (nz,) = np.nonzero(dense[i])
        assert ids.tolist() == nz.tolist() and q.tolist() == dense[i, nz].tolist()
    # scores of many rows at once = the matrix product
    qv = qvec(next(iter(coll[4].values())), space)
    rows = store.rows(docids[::-1])
    assert store.scores(np.nonzero(qv)[0], qv[np.nonzero(qv)[0]], rows).tolist() == (dense[::-1] @ qv).tolist()
    # the pruned index holds each document's 8 largest weights
    meta = json.loads((root / "top8" / "pyserini_splare_index.json").read_text())
    assert meta["build"]["postings"] == N_DOCS * 8 and meta["first_stage"] == {"prune_docs": "topk:8"}


@pytest.mark.parametrize("pq", [None, "topk:4", "mass:0.6"])
def test_rescore_equals_numpy_full_scores_of_candidates(coll, tmp_path, pq):
    root, space, dense, docids, queries, qfile = coll
    run = tmp_path / "run.txt"
    n = 25
    args = ["--index", str(root / "top8"), "--query-vectors", str(qfile), "--query-vectors-quantized",
            "--rescore", str(n), "--hits", str(n), "--output", str(run)]
    assert search_main(args + (["--prune-queries", pq] if pq else [])) == 0
    got = read_run(run)
    dp = pruned_dense(dense, topk=8)
    topk, mass = parse_pruning(pq) if pq else (0, None)
    for qid, q in queries.items():
        full_q = qvec(q, space)
        first_q = full_q.copy()
        if pq:
            (nz,) = np.nonzero(full_q)
            kept = prune(SparseVector(nz, full_q[nz].astype(np.float32)), topk, mass).ids
            first_q[:] = 0
            first_q[kept] = full_q[kept]
        cands = [docids.index(d) for d, _ in ranked(dp @ first_q, docids, n)]
        want = ranked(dense @ full_q, docids, n, among=cands)
        assert got.get(qid, []) == want, qid
    # the rescored ranking differs from the first stage's somewhere (the test is not vacuous)
    first = tmp_path / "first.txt"
    assert search_main(["--index", str(root / "top8"), "--query-vectors", str(qfile), "--query-vectors-quantized",
                        "--hits", str(n), "--output", str(first)] + (["--prune-queries", pq] if pq else [])) == 0
    assert read_run(first) != got


def test_no_pruning_two_step_equals_full_search(coll, tmp_path):
    root, space, dense, docids, queries, qfile = coll
    assert index_main(["--backend", "exact", "--input", str(root / "vectors"), "--index", str(tmp_path / "fs"),
                       "--forward-store"]) == 0
    full, two = tmp_path / "full.txt", tmp_path / "two.txt"
    common = ["--query-vectors", str(qfile), "--query-vectors-quantized", "--hits", "50"]
    assert search_main(["--index", str(root / "full"), "--output", str(full)] + common) == 0
    assert search_main(["--index", str(tmp_path / "fs"), "--output", str(two), "--rescore", "50"] + common) == 0
    assert read_run(full) == read_run(two)
    for qid, q in queries.items():
        assert read_run(full)[qid] == ranked(dense @ qvec(q, space), docids, 50)


def test_forward_store_from_a_separate_full_folder(coll, tmp_path):
    """--input already pruned (encode --prune-from), the full vectors from --forward-store DIR."""
    from pyserini_splare.encode.pipeline import Settings, prune_to_dir
    from pyserini_splare.search.registry import open_searcher
    from pyserini_splare.search.two_step import TwoStepSearcher

    root, space, dense, docids, queries, _ = coll
    prune_to_dir(tmp_path / "p8", str(root / "vectors"), Settings(), topk=8)
    assert index_main(["--backend", "exact", "--input", str(tmp_path / "p8"), "--index", str(tmp_path / "ix"),
                       "--forward-store", str(root / "vectors")]) == 0
    from pyserini_splare.search.base import QuantizedQuery

    with TwoStepSearcher(open_searcher(tmp_path / "ix"), 240) as s:  # every candidate: full scores
        res = s.batch_search({q: QuantizedQuery(v) for q, v in queries.items()}, k=10)
    dp = pruned_dense(dense, topk=8)
    for qid, q in queries.items():
        cands = [docids.index(d) for d, _ in ranked(dp @ qvec(q, space), docids, 240)]
        assert res[qid] == [(d, float(s)) for d, s in ranked(dense @ qvec(q, space), docids, 10, among=cands)]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ") and "Traceback" not in "\n".join(err)
    return err[-1]


def test_bad_input(coll, tmp_path, capsys):
    root, space, dense, docids, queries, qfile = coll
    run = tmp_path / "run.txt"
    q = ["--query-vectors", str(qfile), "--output", str(run)]

    def search(index, *extra):
        code = search_main(["--index", str(index), *q, *extra])
        assert code == 2 and not run.exists()
        return _one_line_error(capsys)

    assert "no forward store" in search(root / "full", "--rescore", "10")
    assert "--rescore" in search(root / "top8", "--rescore", "0")
    assert "--rescore" in search(root / "top8", "--rescore", "-3")
    assert "--prune-queries" in search(root / "top8", "--rescore", "5", "--prune-queries", "topk:0")
    assert "--prune-queries" in search(root / "top8", "--rescore", "5", "--topk", "3")
    # calibration measures one stage: with a rescoring second stage it would calibrate the wrong thing
    assert "drop --rescore" in search(root / "top8", "--rescore", "5", "--target-recall", "0.9")
    # a text (BM25) index: no sparse first stage to rescore or queries to prune (metadata only: no JVM)
    from pyserini_splare.formats.index_meta import write_index_meta

    (tmp_path / "bm25").mkdir()
    write_index_meta(tmp_path / "bm25", "bm25")
    assert "sparse index" in search(tmp_path / "bm25", "--rescore", "5")
    assert "sparse index" in search(tmp_path / "bm25", "--prune-queries", "topk:3")
    # a store of other documents: another collection's store copied into the index
    rng = np.random.default_rng(5)
    write_docs(tmp_path / "other", rng, ids_of=lambda i: f"x{i:04d}")
    assert index_main(["--backend", "exact", "--input", str(tmp_path / "other"), "--index", str(tmp_path / "oix"),
                       "--forward-store"]) == 0
    bad = tmp_path / "bad-docs"
    shutil.copytree(root / "top8", bad)
    shutil.rmtree(bad / "forward")
    shutil.copytree(tmp_path / "oix" / "forward", bad / "forward")
    assert "does not match" in search(bad, "--rescore", "5")
    # other counts: a store of 100 documents under an index of 240
    write_docs(tmp_path / "small", rng, n_docs=100)
    assert index_main(["--backend", "exact", "--input", str(tmp_path / "small"), "--index", str(tmp_path / "six"),
                       "--forward-store"]) == 0
    shutil.rmtree(bad / "forward")
    shutil.copytree(tmp_path / "six" / "forward", bad / "forward")
    assert "100 documents" in search(bad, "--rescore", "5")
    # another feature space
    write_docs(tmp_path / "sp", rng, space=PrefixedSpace("L", N_FEATURES + 6))
    assert index_main(["--backend", "exact", "--input", str(tmp_path / "sp"), "--index", str(tmp_path / "spx"),
                       "--forward-store"]) == 0
    shutil.rmtree(bad / "forward")
    shutil.copytree(tmp_path / "spx" / "forward", bad / "forward")
    assert "feature space" in search(bad, "--rescore", "5")
    # a truncated store
    shutil.rmtree(bad / "forward")
    shutil.copytree(root / "top8" / "forward", bad / "forward")
    p = bad / "forward" / "impacts.u16"
    p.write_bytes(p.read_bytes()[:-2])
    assert "expected" in search(bad, "--rescore", "5")

    def index(*args):
        out = tmp_path / "never"
        assert index_main(["--backend", "exact", "--index", str(out), *args]) == 2
        assert not out.exists() and not list(tmp_path.glob("never*")) and not list(tmp_path.glob(".prune-*"))
        return _one_line_error(capsys)

    # --forward-store DIR holding other documents / another space than --input
    assert "other documents" in index("--input", str(root / "vectors"), "--forward-store", str(tmp_path / "other"))
    assert "feature space" in index("--input", str(root / "vectors"), "--forward-store", str(tmp_path / "sp"))
    assert "--prune-docs" in index("--input", str(root / "vectors"), "--prune-docs", "topk:-1")
    assert "--prune-docs" in index("--input", str(root / "vectors"), "--prune-docs", "mass:2", "--forward-store")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["seismic", pytest.param("lucene", marks=pytest.mark.jvm)])
def test_any_first_stage_rescored_exactly(coll, tmp_path, backend):
    """Seismic (approximate) and Lucene first stages: whatever candidates they return, two-step returns
    them ranked by numpy's full-vector scores."""
    from pyserini_splare.search.base import QuantizedQuery
    from pyserini_splare.search.registry import open_searcher
    from pyserini_splare.search.two_step import TwoStepSearcher

    root, space, dense, docids, queries, _ = coll
    if backend == "seismic":
        pytest.importorskip("seismic")
    assert index_main(["--backend", backend, "--input", str(root / "vectors"), "--index", str(tmp_path / "ix"),
                       "--prune-docs", "mass:0.5", "--forward-store"]) == 0
    qq = {q: QuantizedQuery(v) for q, v in queries.items()}
    with TwoStepSearcher(open_searcher(tmp_path / "ix"), 20, topk=5) as s:
        first = s.first.batch_search(s.first_stage_queries(qq), k=20)
        got = s.batch_search(qq, k=20)
    assert sum(len(h) for h in first.values()) > 0
    for qid, q in queries.items():
        cands = [docids.index(d) for d, _ in first[qid]]
        assert got[qid] == [(d, float(x)) for d, x in ranked(dense @ qvec(q, space), docids, 20, among=cands)]


def test_leftover_store_folder_is_not_deleted(coll, tmp_path, capsys):
    root = coll[0]
    left = tmp_path / "ix.forward"
    left.mkdir()
    (left / "mine.txt").write_text("x")
    args = ["--backend", "exact", "--input", str(root / "vectors"), "--index", str(tmp_path / "ix"), "--forward-store"]
    assert index_main(args) == 2
    assert "already exists" in _one_line_error(capsys) and (left / "mine.txt").exists()
    assert not (tmp_path / "ix").exists()
    assert index_main(args + ["--overwrite"]) == 0
    assert not left.exists() and (tmp_path / "ix" / "forward" / "forward.json").is_file()
