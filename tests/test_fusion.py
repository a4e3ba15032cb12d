"""Fusion: RRF against the formula, ranx and Pyserini; query-set handling; bad input.

ranx compiles with numba on first use (~15-20 s per process once its cache exists), so everything
that calls ranx shares one module-scoped fixture that pays that cost once.
"""

from __future__ import annotations

import pytest

from pyserini_splare.fusion.__main__ import main
from pyserini_splare.formats.runs import read_trec_run

# Run A has a tie (d2, d3 at 5.0): ranked by docid, so d2 is rank 2 and d3 rank 3.
RUN_A = """\
q1 Q0 d1 1 9.0 a
q1 Q0 d2 2 5.0 a
q1 Q0 d3 3 5.0 a
q1 Q0 d4 4 1.0 a
q2 Q0 d5 1 3.0 a
q2 Q0 d6 2 2.0 a
"""
RUN_B = """\
q1 Q0 d3 1 0.9 b
q1 Q0 d5 2 0.8 b
q1 Q0 d1 3 0.1 b
q2 Q0 d6 1 7.0 b
q2 Q0 d7 2 6.0 b
q2 Q0 d5 3 5.0 b
"""
RUN_C_PARTIAL = """\
q2 Q0 d7 1 1.0 c
q3 Q0 d9 1 1.0 c
"""


@pytest.fixture(scope="module")
def ranx_ready():
    """Import ranx and run one fusion, so numba compiles once for the module."""
    import warnings

    from ranx import Run, fuse

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, b = Run.from_dict({"q": {"x": 2.0, "y": 1.0}}), Run.from_dict({"q": {"y": 2.0, "z": 1.0}})
        fuse([a, b], norm=None, method="rrf", params={"k": 60})
        fuse([a, b], norm="min-max", method="sum")
    return True


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def _rrf_by_hand(runs_ranked, k, depth=None):
    """RRF(d) = sum_r 1 / (k + rank_r(d)), ranks 1-based, each run cut at depth."""
    out = {}
    for run in runs_ranked:
        for qid, docs in run.items():
            for rank, d in enumerate(docs[:depth] if depth else docs, 1):
                out.setdefault(qid, {}).setdefault(d, 0.0)
                out[qid][d] += 1.0 / (k + rank)
    return out


RANKED_A = {"q1": ["d1", "d2", "d3", "d4"], "q2": ["d5", "d6"]}
RANKED_B = {"q1": ["d3", "d5", "d1"], "q2": ["d6", "d7", "d5"]}


@pytest.mark.slow  # ranx (numba) compiles its fusion kernels on first use
def test_rrf_equals_formula_ranx_and_pyserini(tmp_path, ranx_ready):
    a, b = _write(tmp_path, "a.txt", RUN_A), _write(tmp_path, "b.txt", RUN_B)
    out = tmp_path / "f.txt"
    assert main(["--runs", a, b, "--method", "rrf", "--rrf.k", "10", "--output", str(out)]) == 0
    got = read_trec_run(out)
    expected = _rrf_by_hand([RANKED_A, RANKED_B], 10)
    assert got.keys() == expected.keys()
    for qid in expected:
        assert got[qid].keys() == expected[qid].keys()
        for d, s in expected[qid].items():
            assert got[qid][d] == pytest.approx(s, rel=1e-8)
    # the file's ranks follow score desc, docid asc
    lines = [line.split() for line in out.read_text().splitlines()]
    q1 = [(l[2], int(l[3])) for l in lines if l[0] == "q1"]
    assert [d for d, _ in q1] == sorted(expected["q1"], key=lambda d: (-expected["q1"][d], d))
    assert [r for _, r in q1] == [1, 2, 3, 4, 5]

    # ranx's own fuse on the same runs (scores without ties, so ranx's ranks are unambiguous)
    import warnings

    from ranx import Run, fuse

    def as_dict(ranked):
        return {q: {d: float(len(ds) - i) for i, d in enumerate(ds)} for q, ds in ranked.items()}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = fuse([Run.from_dict(as_dict(RANKED_A)), Run.from_dict(as_dict(RANKED_B))], norm=None,
                   method="rrf", params={"k": 10}).to_dict()
    for qid in expected:
        for d, s in ref[qid].items():
            assert got[qid][d] == pytest.approx(s, rel=1e-8)

    # Pyserini's reciprocal_rank_fusion (file rank column, rrf_k, depth, k)
    from pyserini.fusion import reciprocal_rank_fusion
    from pyserini.trectools import TrecRun

    ps = reciprocal_rank_fusion([TrecRun(a), TrecRun(b)], rrf_k=10, depth=1000, k=1000).run_data
    assert len(ps) == sum(len(v) for v in got.values())
    for row in ps.itertuples():
        assert got[str(row.topic)][row.docid] == pytest.approx(row.score, rel=1e-8)


@pytest.mark.slow  # ranx (numba) compiles its fusion kernels on first use
def test_depth_and_k(tmp_path, ranx_ready):
    a, b = _write(tmp_path, "a.txt", RUN_A), _write(tmp_path, "b.txt", RUN_B)
    out = tmp_path / "f.txt"
    assert main(["--runs", a, b, "--rrf.k", "60", "--depth", "2", "--k", "2", "--output", str(out)]) == 0
    got = read_trec_run(out)
    expected = _rrf_by_hand([RANKED_A, RANKED_B], 60, depth=2)
    for qid, scores in expected.items():
        top2 = sorted(scores, key=lambda d: (-scores[d], d))[:2]
        assert list(got[qid]) == top2
        for d in top2:
            assert got[qid][d] == pytest.approx(scores[d], rel=1e-8)

    from pyserini.fusion import reciprocal_rank_fusion
    from pyserini.trectools import TrecRun

    from pyserini_splare.formats.runs import read_trec_run as rd

    ps = reciprocal_rank_fusion([TrecRun(a), TrecRun(b)], rrf_k=60, depth=2, k=2).run_data
    assert sorted((str(r.topic), r.docid) for r in ps.itertuples()) == sorted(
        (q, d) for q, h in rd(out).items() for d in h)


@pytest.mark.slow  # ranx (numba) compiles its fusion kernels on first use
def test_union_and_intersection_of_query_sets(tmp_path, capsys, ranx_ready):
    a, c = _write(tmp_path, "a.txt", RUN_A), _write(tmp_path, "c.txt", RUN_C_PARTIAL)
    out = tmp_path / "u.txt"
    assert main(["--runs", a, c, "--rrf.k", "10", "--output", str(out)]) == 0
    err = capsys.readouterr().err
    assert "query sets differ" in err and "union of 3 queries" in err
    got = read_trec_run(out)
    # q1 only in A, q3 only in C: a run without a query adds nothing
    expected = _rrf_by_hand([RANKED_A, {"q2": ["d7"], "q3": ["d9"]}], 10)
    assert got.keys() == expected.keys() == {"q1", "q2", "q3"}
    for qid in expected:
        for d, s in expected[qid].items():
            assert got[qid][d] == pytest.approx(s, rel=1e-8)

    out2 = tmp_path / "i.txt"
    assert main(["--runs", a, c, "--queries", "intersection", "--output", str(out2)]) == 0
    assert "dropped 2" in capsys.readouterr().err
    assert set(read_trec_run(out2)) == {"q2"}


@pytest.mark.slow  # ranx (numba) compiles its fusion kernels on first use
def test_combsum_minmax_equals_formula(tmp_path, ranx_ready):
    a, b = _write(tmp_path, "a.txt", RUN_A), _write(tmp_path, "b.txt", RUN_B)
    out = tmp_path / "s.txt"
    assert main(["--runs", a, b, "--method", "combsum", "--output", str(out)]) == 0
    got = read_trec_run(out)
    expected = {}
    for run in (read_trec_run(a), read_trec_run(b)):
        for qid, hits in run.items():
            lo, hi = min(hits.values()), max(hits.values())
            for d, s in hits.items():
                expected.setdefault(qid, {}).setdefault(d, 0.0)
                expected[qid][d] += (s - lo) / (hi - lo)
    for qid in expected:
        for d, s in expected[qid].items():
            assert got[qid].get(d, 0.0) == pytest.approx(s, abs=1e-8)


@pytest.mark.slow  # ranx (numba) compiles its fusion kernels on first use
def test_wsum_weights(tmp_path, ranx_ready):
    a, b = _write(tmp_path, "a.txt", RUN_A), _write(tmp_path, "b.txt", RUN_B)
    out = tmp_path / "w.txt"
    assert main(["--runs", a, b, "--method", "wsum", "--norm", "none", "--weights", "2", "0.5",
                 "--output", str(out)]) == 0
    got = read_trec_run(out)
    assert got["q1"]["d1"] == pytest.approx(2 * 9.0 + 0.5 * 0.1)
    assert got["q2"]["d5"] == pytest.approx(2 * 3.0 + 0.5 * 5.0)


@pytest.mark.parametrize("text,needle", [
    ("q1 0 d1 1\n", "1:"),                                  # qrels-like (4 fields)
    ("q1 Q0 d1 1 9.0 a\nq1\td2\t3\n", ":2:"),               # TSV line
    ("q1 Q0 d1 first 9.0 a\n", "rank must be an integer"),
    ("q1 Q0 d1 1 high a\n", "score must be a number"),
    ("q1 Q0 d1 1 1 a\nq1 Q0 d1 2 1 a\n", "appears twice"),
])
def test_bad_run_file_is_one_line_error(tmp_path, capsys, text, needle):
    bad, b = _write(tmp_path, "bad.txt", text), _write(tmp_path, "b.txt", RUN_B)
    out = tmp_path / "f.txt"
    assert main(["--runs", bad, b, "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and needle in err
    assert not out.exists()


@pytest.mark.parametrize("argv,needle", [
    (["--method", "wsum"], "needs one weight per run"),
    (["--method", "rrf", "--norm", "min-max"], "does not apply"),
    (["--weights", "1", "2"], "'wsum' only"),
    (["--rrf.k", "0"], "argument --rrf.k: must be > 0, got '0'"),
    (["--rrf.k", "-1e-4"], "argument --rrf.k: must be > 0, got '-1e-4'"),  # a value, not an unknown option
])
def test_bad_settings(tmp_path, capsys, argv, needle):
    a, b = _write(tmp_path, "a.txt", RUN_A), _write(tmp_path, "b.txt", RUN_B)
    assert main(["--runs", a, b, "--output", str(tmp_path / "f.txt"), *argv]) == 2
    assert needle in capsys.readouterr().err


def test_missing_run_file(tmp_path, capsys):
    b = _write(tmp_path, "b.txt", RUN_B)
    assert main(["--runs", str(tmp_path / "nope.txt"), b, "--output", str(tmp_path / "f.txt")]) == 2
    assert "does not exist" in capsys.readouterr().err


# Run C has q2 (shared by all three runs) and q3 (its own); A and B have q1 and q2.
RUN_C_OWN = """\
q2 Q0 d5 1 4.0 c
q2 Q0 d8 2 2.5 c
q2 Q0 d6 3 1.0 c
q3 Q0 d9 1 3.0 c
q3 Q0 d2 2 2.0 c
q3 Q0 d1 3 0.5 c
"""


@pytest.mark.slow  # ranx (numba) compiles its fusion kernels on first use
def test_zmuv_on_different_query_sets_is_refused_and_fuses_the_shared_ones(tmp_path, capsys, ranx_ready):
    """ranx's zmuv fails on an empty result list (docs/fusion.md): a one-line error under union; under
    intersection the shared query equals ranx's own fusion."""
    import warnings

    from ranx import Run, fuse

    paths = [_write(tmp_path, n, t) for n, t in (("a.txt", RUN_A), ("b.txt", RUN_B), ("c.txt", RUN_C_OWN))]
    out = tmp_path / "f.txt"
    assert main(["--runs", *paths, "--method", "combsum", "--norm", "zmuv", "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --norm zmuv cannot fuse") and "\n" not in err and not out.exists()
    assert main(["--runs", *paths, "--method", "combsum", "--norm", "zmuv", "--queries", "intersection",
                 "--output", str(out)]) == 0
    runs = [read_trec_run(p) for p in paths]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = fuse([Run.from_dict({"q2": r["q2"]}) for r in runs], norm="zmuv", method="sum").to_dict()
    assert read_trec_run(out) == {"q2": pytest.approx(ref["q2"], rel=1e-8, abs=1e-9)}


@pytest.mark.slow  # ranx (numba) compiles its fusion kernels on first use
@pytest.mark.parametrize("norm", ["min-max", "max", "sum", "rank", "borda", "none"])
def test_every_norm_on_different_query_sets_equals_ranx(tmp_path, ranx_ready, norm):
    """Shared queries fuse as ranx fuses the runs cut to them; a query some runs lack fuses as
    documented (docs/fusion.md): those runs add nothing, or under borda Borda's equal share
    (1 + 1/n) / 2 for a run that ranked none of the n candidates."""
    import warnings

    from ranx import Run, fuse

    paths = [_write(tmp_path, n, t) for n, t in (("a.txt", RUN_A), ("b.txt", RUN_B), ("c.txt", RUN_C_OWN))]
    out = tmp_path / "f.txt"
    assert main(["--runs", *paths, "--method", "combsum", "--norm", norm, "--output", str(out)]) == 0
    got = read_trec_run(out)
    runs = [read_trec_run(p) for p in paths]

    def ranx_sum(cut_runs):
        # runs given to ranx in rank order (its borda reads positions); the same run twice is fine
        ordered = [Run.from_dict({q: dict(sorted(h.items(), key=lambda x: (-x[1], x[0]))) for q, h in r.items()})
                   for r in cut_runs]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fuse(ordered, norm=None if norm == "none" else norm, method="sum").to_dict()

    def only(run, qid):
        return {qid: run[qid]}

    def borda_share(qid, members):
        n = len({d for r in members for d in r[qid]})  # the query's candidates
        return (1 + 1 / n) / 2 if norm == "borda" else 0.0

    assert set(got) == {"q1", "q2", "q3"}
    # q2: every run has it
    ref = ranx_sum([only(r, "q2") for r in runs])["q2"]
    assert got["q2"] == pytest.approx(ref, rel=1e-8, abs=1e-9)  # 9 significant digits in the file
    # q1: A and B have it, C does not
    ref = ranx_sum([only(runs[0], "q1"), only(runs[1], "q1")])["q1"]
    shift = borda_share("q1", runs[:2])
    assert got["q1"] == pytest.approx({d: s + shift for d, s in ref.items()}, rel=1e-8, abs=1e-9)
    assert list(got["q1"]) == sorted(ref, key=lambda d: (-ref[d], d))  # same ranking as fusing A and B
    # q3: only C has it; C fused with itself is twice its normalized scores
    ref = ranx_sum([only(runs[2], "q3"), only(runs[2], "q3")])["q3"]
    shift = 2 * borda_share("q3", runs[2:])
    assert got["q3"] == pytest.approx({d: s / 2 + shift for d, s in ref.items()}, rel=1e-8, abs=1e-9)
