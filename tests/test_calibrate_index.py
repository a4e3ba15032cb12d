"""``index --backend seismic ... --calibrate``: the recall-latency curve right after the build.

The curve must be what ``search --calibration-curve`` prints on the same index, queries and seed (both
run search/calibrate.py's one walk), and each row's recall the brute-force recall of that setting
(numpy's exact integer dot products, :func:`test_calibrate.brute_force`). Bad calibration input is
refused before the build: one ``error:`` line, exit 2, no index folder (nor its ``.partial``) left.
"""

from __future__ import annotations

import json

import pytest

from pyserini_splare.formats.calibration import CALIBRATION_FILE, read_calibration
from pyserini_splare.search.calibrate import recall_at, split_queries
from pyserini_splare.testing import synth
from test_calibrate import brute_force, one_error, small_exact  # noqa: E402  (tests/ is on sys.path)
from test_calibrate import stage_cli as cli  # noqa: E402


def nothing_written(index):
    return not index.exists() and not index.with_name(index.name + ".partial").exists()


# ---------------------------------------------------------------------------------------------
# Refused before the build (fast: exact indexes of 300 documents, no Seismic build)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    from pyserini_splare.index.__main__ import main as index_main

    root = tmp_path_factory.mktemp("calib_index_small")
    cfg, docs, queries, vdir, qfile = small_exact(root, root / "ref.exact")
    fvdir, _ = synth.write_collection(docs[:200], queries[:1], cfg, root / "fewer", 100.0)
    assert index_main(["--backend", "exact", "--input", str(fvdir), "--index", str(root / "fewer.exact")]) == 0
    return root, vdir, qfile


@pytest.mark.parametrize("backend,extra,match", [
    ("exact", ["--calibrate"], "already exact"),  # rank-safe: refused before asking for queries
    ("seismic", ["--calibrate"], "needs queries"),
    ("seismic", ["--target-recall", 0.9], "--target-recall needs --calibrate"),
    ("seismic", ["--calibration-query-vectors", "Q"], "needs --calibrate"),
    ("seismic", ["--recall-at", 10], "--recall-at needs --calibrate"),
    ("seismic", ["--calibrate", "--calibration-query-vectors", "Q", "--calibration-queries", 20], "no held-out"),
    ("seismic", ["--calibrate", "--calibration-query-vectors", "Q", "--target-recall", 1.5], "--target-recall"),
    ("seismic", ["--calibrate", "--calibration-query-vectors", "Q", "--calibration-reference", "fewer.exact"],
     "does not cover the same documents"),
    ("seismic", ["--calibrate", "--calibration-query-vectors", "Q", "--calibration-reference", "vectors"],
     "not an index"),
    ("seismic", ["--calibrate", "--calibration-query-vectors", "Q", "--calibration-reference", "missing"],
     "does not exist"),
    ("seismic", ["--calibrate", "--calibration-query-vectors", "Q", "--prune-docs", "topk:10"], "--prune-docs"),
    ("seismic", ["--calibrate", "--calibration-query-vectors", "missing"], "missing"),
])
def test_refused_before_building(capsys, small, tmp_path, backend, extra, match):
    root, vdir, qfile = small
    extra = [qfile if x == "Q" else root / x if x in ("fewer.exact", "vectors", "missing") else x for x in extra]
    match = str(root / "missing") if match == "missing" else match
    index = tmp_path / "index.seismic"
    rc, _, err = cli(capsys, "index", "--backend", backend, "--input", vdir, "--index", index, *extra)
    one_error(rc, err, match)
    assert nothing_written(index)


def test_no_sibling_reference(capsys, small, tmp_path):
    """Without --calibration-reference, a sibling index of the same --input; none here."""
    _, vdir, qfile = small
    index = tmp_path / "index.seismic"
    rc, _, err = cli(capsys, "index", "--backend", "seismic", "--input", vdir, "--index", index, "--calibrate",
                     "--calibration-query-vectors", qfile)
    one_error(rc, err, "no reference to calibrate")
    assert nothing_written(index)


def test_help_teaches_calibrate(capsys):
    rc, out, _ = cli(capsys, "index", "--help")
    assert rc == 0
    assert "--calibrate" in out and "--calibration-query-vectors" in out
    assert any(line.strip().startswith("--calibrate --calibration-query-vectors") for line in out.splitlines())


# ---------------------------------------------------------------------------------------------
# A Seismic build with its curve (slow)
# ---------------------------------------------------------------------------------------------

K, N, SEED = 20, 20, 3


def _rows(out: str) -> list[tuple[str, str]]:
    """(setting, recall) of each row of the curve table in ``out`` (the timings differ run to run)."""
    lines = out.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("setting"))
    return [(" ".join(ln.split()[:3]), ln.split()[3]) for ln in lines[head + 1:] if ln.startswith("query_cut=")]


@pytest.mark.slow
def test_index_calibrate_prints_the_search_curve_and_records(capsys, tmp_path):
    root = tmp_path
    cfg = synth.SynthConfig(n_features=131072, doc_terms=120, query_terms=30, active_features=8192, seed=11)
    docs, queries = synth.generate(cfg, 1000, 40)
    vdir, qfile = synth.write_collection(docs, queries, cfg, root, 100.0)
    truth = brute_force(vdir, qfile, K)
    rc, _, err = cli(capsys, "index", "--backend", "exact", "--input", vdir, "--index", root / "index.exact")
    assert rc == 0, err
    index = root / "index.seismic"
    rc, out, err = cli(capsys, "index", "--backend", "seismic", "--input", vdir, "--index", index, "--threads", 2,
                       "--calibrate", "--calibration-query-vectors", qfile, "--calibration-query-vectors-quantized",
                       "--recall-at", K, "--calibration-queries", N, "--calibration-seed", SEED, "--target-recall", 0.95)
    assert rc == 0, err
    assert out.startswith("built seismic index") and f"reference {root / 'index.exact'}" in out  # the sibling
    rows = _rows(out)
    assert len(rows) >= 2
    # the same table as search --calibration-curve on the same index, queries and seed
    rc, sout, serr = cli(capsys, "search", "--index", index, "--query-vectors", qfile, "--query-vectors-quantized",
                         "--calibration-curve", "--recall-at", K, "--calibration-queries", N,
                         "--calibration-seed", SEED)
    assert rc == 0, serr
    assert sorted(_rows(sout)) == sorted(rows)
    # every row's recall is the brute-force recall of its setting on the sample
    from pyserini_splare.formats.query_vectors import read_query_vectors
    from pyserini_splare.search.base import QuantizedQuery
    from pyserini_splare.search.seismic import SeismicSearcher

    qids = [json.loads(line)["id"] for line in qfile.open()]
    sample, held = split_queries(qids, N, SEED)
    qs = {q: QuantizedQuery(v) for q, v in read_query_vectors(qfile).items()}
    for setting, recall in rows:
        opts = {kv.split("=")[0]: float(kv.split("=")[1]) for kv in setting.split()}
        with SeismicSearcher(index, query_cut=int(opts["query_cut"]), heap_factor=opts["heap_factor"]) as s:
            got = s.batch_search({q: qs[q] for q in sample}, k=K)
        assert float(recall) == pytest.approx(recall_at(got, {q: truth[q] for q in sample}, K), abs=1e-4)
    # --target-recall recorded a calibration that reaches it on the sample, by brute force
    entry = read_calibration(index, documents=1000)[0]
    assert entry["target_recall"] == 0.95 and entry["recall_at"] == K and entry["calibration"]["queries"] == N
    o = entry["options"]
    with SeismicSearcher(index, query_cut=o["query_cut"], heap_factor=o["heap_factor"]) as s:
        got = s.batch_search(qs, k=K)
    assert recall_at({q: got[q] for q in sample}, {q: truth[q] for q in sample}, K) >= 0.95
    assert entry["held_out"]["recall"] == pytest.approx(
        recall_at({q: got[q] for q in held}, {q: truth[q] for q in held}, K), abs=1e-6)
    # ... and search --target-recall reuses it
    rc, _, serr = cli(capsys, "search", "--index", index, "--query-vectors", qfile, "--query-vectors-quantized",
                      "--output", root / "run.txt", "--hits", K, "--target-recall", 0.95)
    assert rc == 0 and "reusing the calibration recorded in this index" in serr, serr
    assert (index / CALIBRATION_FILE).is_file()
