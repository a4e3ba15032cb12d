"""``search --target-recall`` / ``--calibration-curve``: Seismic's settings calibrated against a rank-safe reference.

The reference every test trusts is computed here with numpy: the exact integer dot products of the
synthetic collection's quantized vectors (read back from the files the index was built from), top-k by
(score desc, docid asc). The calibration's own reference (an exact index) is what the tool uses; the
tests check its claims against this brute force.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest

from pyserini_splare.formats.calibration import (CALIBRATION_FILE, find_entry, read_calibration,
                                                 write_calibration)
from pyserini_splare._errors import UsageError
from pyserini_splare.search.calibrate import (check_same_documents, curve_table, Point, recall_at, sample_size,
                                              split_queries)
from pyserini_splare.testing import synth


def cli(capsys, *args) -> tuple[int, str, str]:
    """``python -m pyserini_splare.search ARGS`` in-process: (exit status, stdout, stderr)."""
    return stage_cli(capsys, "search", *args)


def stage_cli(capsys, stage, *args) -> tuple[int, str, str]:
    """``python -m pyserini_splare.STAGE ARGS`` in-process: (exit status, stdout, stderr)."""
    main = importlib.import_module(f"pyserini_splare.{stage}.__main__").main
    try:
        rc = main([str(a) for a in args])
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def one_error(rc, err, match):
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert match in lines[0], lines[0]


# ---------------------------------------------------------------------------------------------
# Pieces (fast)
# ---------------------------------------------------------------------------------------------


def test_split_is_seeded_disjoint_and_complete():
    qids = [f"q{i}" for i in range(50)]
    a, held = split_queries(qids, 20, seed=3)
    assert (a, held) == split_queries(qids, 20, seed=3)
    assert len(a) == 20 and not set(a) & set(held) and sorted(a + held) == sorted(qids)
    assert a != split_queries(qids, 20, seed=4)[0]


@pytest.mark.parametrize("n_topics,queries,expected", [(400, None, 200), (100, None, 50), (100, 0.25, 25), (10, 9, 9)])
def test_sample_size(n_topics, queries, expected):
    assert sample_size(n_topics, queries) == expected


@pytest.mark.parametrize("n_topics,queries", [(10, 10), (10, 11), (10, 0.01), (1, None), (10, 2.5)])
def test_sample_size_refuses(n_topics, queries):
    with pytest.raises(UsageError):
        sample_size(n_topics, queries)


def test_recall_at_by_hand():
    ref = {"a": [("d1", 9.0), ("d2", 8.0), ("d3", 7.0)], "b": [("d4", 5.0)], "c": []}
    got = {"a": [("d1", 9.0), ("d3", 7.0), ("d9", 6.0)], "b": [("d5", 5.0)], "c": []}
    assert recall_at(got, ref, 3) == pytest.approx((2 / 3 + 0 + 1) / 3)
    assert recall_at(got, ref, 1) == pytest.approx((1 + 0 + 1) / 3)


def test_check_same_documents():
    ref = {"a": [("d1", 9.0), ("d2", 8.0)]}
    check_same_documents({"a": [("d1", 9.0), ("d3", 8.0)]}, ref, 2, "R")  # a tie at the cut-off: fine
    with pytest.raises(UsageError, match="does not cover the same documents"):
        check_same_documents({"a": [("d7", 8.5)]}, ref, 2, "R")  # above the k-th score yet missing there
    with pytest.raises(UsageError, match="not hold the same vectors"):
        check_same_documents({"a": [("d1", 7.0)]}, ref, 2, "R")


def test_curve_table_marks_the_pareto_front():
    pts = [Point({"query_cut": 5, "heap_factor": 1.0}, 0.8, 1.0, 1.0),
           Point({"query_cut": 10, "heap_factor": 1.0}, 0.95, 2.0, 2.0),
           Point({"query_cut": 10, "heap_factor": 0.9}, 0.9, 3.0, 3.0)]  # slower and worse than the second
    rows = curve_table(pts, 10).splitlines()
    assert "recall@10" in rows[0] and len(rows) == 4
    assert [r.rstrip().endswith("*") for r in rows[1:]] == [True, True, False]


def _entry(target=0.99, k=1000, recall=0.995):
    return {"target_recall": target, "recall_at": k, "options": {"query_cut": 30, "heap_factor": 0.8, "n_knn": 0},
            "calibration": {"queries": 100, "recall": recall, "ms_per_query": 1.5}, "held_out": None}


def test_calibration_file_round_trip(tmp_path):
    assert read_calibration(tmp_path) == []
    write_calibration(tmp_path, "seismic", 500, _entry())
    write_calibration(tmp_path, "seismic", 500, _entry(k=10))
    write_calibration(tmp_path, "seismic", 500, _entry(recall=0.999))  # same (target, k): replaces
    entries = read_calibration(tmp_path, documents=500)
    assert len(entries) == 2 and find_entry(entries, 0.99, 1000)["calibration"]["recall"] == 0.999
    assert find_entry(entries, 0.95, 1000) is None
    with pytest.raises(UsageError, match="500 documents"):
        read_calibration(tmp_path, documents=501)
    with pytest.raises(UsageError, match="target_recall"):
        write_calibration(tmp_path, "seismic", 500, _entry(target=1.5))
    (tmp_path / CALIBRATION_FILE).write_text("{not json")
    with pytest.raises(UsageError, match="malformed"):
        read_calibration(tmp_path)


def test_registry_declares_what_is_calibrated():
    from pyserini_splare.backends import BACKENDS

    grid = BACKENDS["seismic"].calibration_grid()
    assert set(grid) == {"query_cut", "heap_factor", "n_knn"}
    assert list(grid["query_cut"]) == sorted(grid["query_cut"])  # fastest first: fewer terms,
    assert list(grid["heap_factor"]) == sorted(grid["heap_factor"], reverse=True)  # larger heap_factor
    assert {b.name for b in BACKENDS.values() if b.rank_safe} == {"exact", "lucene", "lucene-group"}


# ---------------------------------------------------------------------------------------------
# Bad input that needs no Seismic index (fast: an exact index of 300 documents)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("calib_small")
    *_, qfile = small_exact(root, root / "exact")
    return root, qfile


def small_exact(root: Path, index: Path):
    """300 synthetic documents and 20 queries over 4,096 features written under ``root``, and their exact
    index at ``index``: (the generator's config, documents, queries, vectors folder, query file)."""
    from pyserini_splare.index.__main__ import main as index_main

    cfg = synth.SynthConfig(n_features=4096, doc_terms=40, query_terms=10, prefix="t", seed=2)
    docs, queries = synth.generate(cfg, 300, 20)
    vdir, qfile = synth.write_collection(docs, queries, cfg, root, 100.0)
    assert index_main(["--backend", "exact", "--input", str(vdir), "--index", str(index)]) == 0
    return cfg, docs, queries, vdir, qfile


@pytest.mark.parametrize("target", ["0", "-0.5", "1.01", "nan"])
def test_target_outside_unit_interval(capsys, small, tmp_path, target):
    root, qfile = small
    out = tmp_path / "run.txt"
    rc, _, err = cli(capsys, "--index", root / "exact", "--query-vectors", qfile, "--output", out,
                     "--target-recall", target)
    one_error(rc, err, "--target-recall")
    assert not out.exists()


def test_target_recall_on_a_rank_safe_index(capsys, small, tmp_path):
    root, qfile = small
    out = tmp_path / "run.txt"
    rc, _, err = cli(capsys, "--index", root / "exact", "--query-vectors", qfile, "--output", out,
                     "--target-recall", "0.9")
    one_error(rc, err, "already exact")
    rc, _, err = cli(capsys, "--index", root / "exact", "--query-vectors", qfile, "--calibration-curve")
    one_error(rc, err, "already exact")
    assert not out.exists() and not (root / "exact" / CALIBRATION_FILE).exists()


# ---------------------------------------------------------------------------------------------
# A small Seismic index (slow: the module fixture builds it)
# ---------------------------------------------------------------------------------------------

K = 20


@pytest.fixture(scope="module")
def coll(tmp_path_factory):
    from pyserini_splare.index.__main__ import main as index_main

    root = tmp_path_factory.mktemp("calib")
    cfg = synth.SynthConfig(n_features=131072, doc_terms=120, query_terms=30, active_features=8192, seed=11)
    docs, queries = synth.generate(cfg, 3000, 80)
    vdir, qfile = synth.write_collection(docs, queries, cfg, root, 100.0)
    for b in ("exact", "seismic"):
        assert index_main(["--backend", b, "--input", str(vdir), "--index", str(root / f"index.{b}"),
                           "--threads", "2"]) == 0
    # another collection of the same size and space: a reference that does not hold these documents
    other = synth.generate(synth.SynthConfig(**{**cfg.__dict__, "seed": 12}), 3000, 1)
    ovdir, _ = synth.write_collection(*other, cfg, root / "other", 100.0)
    assert index_main(["--backend", "exact", "--input", str(ovdir), "--index", str(root / "other.exact")]) == 0
    # a reference with fewer documents
    fvdir, _ = synth.write_collection(docs[:2000], queries[:1], cfg, root / "fewer", 100.0)
    assert index_main(["--backend", "exact", "--input", str(fvdir), "--index", str(root / "fewer.exact")]) == 0
    return root, qfile, brute_force(vdir, qfile, K)


def brute_force(vdir: Path, qfile: Path, k: int) -> dict[str, list]:
    """Exact top-k from the files, with numpy: integer dot products, (score desc, docid asc)."""
    docs = [json.loads(line) for p in sorted(vdir.glob("part-*.jsonl")) for line in p.open()]
    terms = {t: i for i, t in enumerate(sorted({t for d in docs for t in d["vector"]}))}
    mat = np.zeros((len(docs), len(terms)), dtype=np.int64)
    for r, d in enumerate(docs):
        for t, w in d["vector"].items():
            mat[r, terms[t]] = w
    ids = np.array([d["id"] for d in docs])
    out = {}
    for line in qfile.open():
        q = json.loads(line)
        qv = np.zeros(len(terms), dtype=np.int64)
        for t, w in q["vector"].items():
            if t in terms:
                qv[terms[t]] = w
        s = mat @ qv
        order = np.lexsort((ids, -s))
        out[q["id"]] = [(str(ids[i]), float(s[i])) for i in order[:k] if s[i] > 0]
    return out


def read_run(path) -> dict[str, list]:
    run: dict[str, list] = {}
    for line in Path(path).read_text().splitlines():
        q, _, d, _, s, _ = line.split()
        run.setdefault(q, []).append((d, float(s)))
    return run


@pytest.mark.slow
def test_calibration_reaches_the_target_on_held_out_queries_and_is_reused(capsys, coll, tmp_path):
    root, qfile, truth = coll
    target, n = 0.95, 40
    run = tmp_path / "run.txt"
    rc, _, err = cli(capsys, "--index", root / "index.seismic", "--query-vectors", qfile, "--query-vectors-quantized",
                     "--output", run, "--hits", K, "--target-recall", target, "--calibration-queries", n)
    assert rc == 0, err
    assert "calibrated seismic" in err and "held-out recall@20" in err
    entry = read_calibration(root / "index.seismic", documents=3000)[0]
    assert entry["recall_at"] == K and entry["calibration"]["recall"] >= target
    # the held-out split is the documented one (seed 0) and the run's recall on it is what was reported
    qids = [json.loads(line)["id"] for line in qfile.open()]
    sample, held = split_queries(qids, n, 0)
    got = read_run(run)
    assert recall_at({q: got[q] for q in sample}, {q: truth[q] for q in sample}, K) >= target
    held_recall = recall_at({q: got.get(q, []) for q in held}, {q: truth[q] for q in held}, K)
    assert entry["held_out"]["queries"] == len(held)
    assert entry["held_out"]["recall"] == pytest.approx(held_recall, abs=1e-6)
    assert held_recall >= target - 0.01  # an estimate on unseen queries; the guarantee is the sample's
    # reused: no measuring, the same setting, the same run
    record = (root / "index.seismic" / CALIBRATION_FILE).read_text()
    run2 = tmp_path / "run2.txt"
    rc, _, err = cli(capsys, "--index", root / "index.seismic", "--query-vectors", qfile, "--query-vectors-quantized",
                     "--output", run2, "--hits", K, "--target-recall", target)
    assert rc == 0 and "reusing the calibration recorded in this index" in err and "calibrated seismic" not in err
    assert run2.read_text() == run.read_text()
    assert (root / "index.seismic" / CALIBRATION_FILE).read_text() == record
    # a plain search keeps the defaults (what serve answers too)
    rc, _, err = cli(capsys, "--index", root / "index.seismic", "--query-vectors", qfile, "--query-vectors-quantized",
                     "--output", tmp_path / "run3.txt", "--hits", K)
    assert rc == 0 and "calibration" not in err.replace(str(tmp_path), "")


@pytest.mark.slow
def test_calibration_curve_prints(capsys, coll):
    from pyserini_splare.search.base import QuantizedQuery
    from pyserini_splare.search.seismic import SeismicSearcher
    from pyserini_splare.formats.query_vectors import read_query_vectors

    root, qfile, truth = coll
    rc, out, err = cli(capsys, "--index", root / "index.seismic", "--query-vectors", qfile,
                       "--query-vectors-quantized", "--calibration-curve", "--recall-at", K,
                       "--calibration-queries", 20, "--calibration-seed", 5)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[1].split()[:2] == ["setting", f"recall@{K}"]
    rows = lines[2:]
    assert len(rows) >= 5 and any(r.rstrip().endswith("*") for r in rows)
    # a row's recall is the brute-force recall of that setting on the sample
    row = rows[0].split()
    opts = {kv.split("=")[0]: float(kv.split("=")[1]) for kv in row[:3]}
    qids = [json.loads(line)["id"] for line in qfile.open()]
    sample, _ = split_queries(qids, 20, 5)
    qs = {q: QuantizedQuery(v) for q, v in read_query_vectors(qfile).items() if q in sample}
    with SeismicSearcher(root / "index.seismic", query_cut=int(opts["query_cut"]), heap_factor=opts["heap_factor"]) as s:
        got = s.batch_search(qs, k=K)
    assert float(row[3]) == pytest.approx(recall_at(got, {q: truth[q] for q in sample}, K), abs=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("extra,match", [
    (["--calibration-queries", 80], "leaves no held-out query"),
    (["--calibration-queries", 200], "leaves no held-out query"),
    (["--calibration-reference", "fewer.exact"], "does not cover the same documents"),
    (["--calibration-reference", "other.exact"], "does not"),
    (["--calibration-reference", "index.seismic"], "rank-safe"),
    (["--query-cut", 10], "conflicts with --target-recall"),
    (["--recall-at", 50], "above --hits"),
])
def test_bad_calibration_input(capsys, coll, tmp_path, extra, match):
    root, qfile, _ = coll
    index = tmp_path / "index.seismic"  # a copy: a failed calibration must leave no record behind
    index.mkdir()
    for f in (root / "index.seismic").iterdir():
        if f.name != CALIBRATION_FILE:  # another test's calibration
            (index / f.name).symlink_to(f)
    extra = [str(root / x) if str(x).endswith((".exact", "index.seismic")) else x for x in extra]
    out = tmp_path / "run.txt"
    rc, _, err = cli(capsys, "--index", index, "--query-vectors", qfile, "--query-vectors-quantized", "--output", out,
                     "--hits", K, "--target-recall", 0.9, "--recalibrate", *extra)
    one_error(rc, err, match)
    assert not out.exists() and not (index / CALIBRATION_FILE).exists()
