"""SINDI backend (pyvsag) against the exact backend on a small topic-structured SPLARE-shaped collection.

Reference: the exact backend (scipy brute force over the same integers). Without pruning SINDI scores
every posting, so its hits must carry the exact scores in the exact order; ties at the cut-off may pick
other documents of the same score, so the test compares score lists and each hit's exact score.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("pyvsag")

from pyserini_splare.index.__main__ import main as index_main  # noqa: E402
from pyserini_splare.testing import synth  # noqa: E402

pytestmark = pytest.mark.slow  # two index builds and a 131,072-feature space (a few seconds)


@pytest.fixture(scope="module")
def coll(tmp_path_factory):
    root = tmp_path_factory.mktemp("sindi")
    cfg = synth.SynthConfig(n_features=131072, doc_terms=120, query_terms=30, active_features=8192, seed=5)
    docs, queries = synth.generate(cfg, 1500, 40)
    vdir, qfile = synth.write_collection(docs, queries, cfg, root, 100.0)
    for b in ("exact", "sindi"):
        assert index_main(["--backend", b, "--input", str(vdir), "--index", str(root / b)]) == 0
    from pyserini_splare.formats.query_vectors import read_query_vectors
    from pyserini_splare.search.base import QuantizedQuery

    return root, {q: QuantizedQuery(v) for q, v in read_query_vectors(qfile).items()}


def _exact_scores(root):
    """Every document's exact score for a query: brute force over the exact index's CSR."""
    from pyserini_splare.search.registry import open_searcher

    return open_searcher(root / "exact")


def test_sindi_unpruned_equals_exact(coll):
    from pyserini_splare.index import read_index_meta
    from pyserini_splare.search.registry import open_searcher

    root, qs = coll
    meta = read_index_meta(root / "sindi")
    assert meta["backend"] == "sindi" and meta["sindi_params"]["index_param"]["term_id_limit"] == 131072
    with open_searcher(root / "sindi") as s, _exact_scores(root) as ex:
        for k in (10, 100):
            ref = ex.batch_search(qs, k=k)
            got = s.batch_search(qs, k=k)
            for q in qs:
                assert [sc for _, sc in got[q]] == [sc for _, sc in ref[q]], q  # same scores, same order
                full = dict(ex.batch_search({q: qs[q]}, k=len(ex.docids))[q])
                assert all(full[d] == sc for d, sc in got[q])  # each hit carries its exact score
                # the hits strictly above the k-th score are exactly exact's (only cut-off ties may differ)
                kth = ref[q][-1][1]
                assert {d for d, sc in got[q] if sc > kth} == {d for d, sc in ref[q] if sc > kth}


def test_sindi_query_pruning_is_approximate_but_close(coll):
    from pyserini_splare.search.registry import open_searcher

    root, qs = coll
    with open_searcher(root / "sindi", query_prune_ratio=0.1) as s, _exact_scores(root) as ex:
        ref, got = ex.batch_search(qs, k=10), s.batch_search(qs, k=10)
    rec = np.mean([len({d for d, _ in got[q]} & {d for d, _ in ref[q]}) / 10 for q in qs])
    assert 0.9 <= rec <= 1.0


def test_sindi_options_checked(tmp_path):
    from pyserini_splare._errors import UsageError
    from pyserini_splare.backends import get_backend

    with pytest.raises(UsageError):
        get_backend("sindi").check_search_options({"query_prune_ratio": 1.0})
    with pytest.raises(UsageError):
        get_backend("sindi").check_build_options({"window_size": 5})
    assert json.dumps(get_backend("sindi").defaults("search"))


def test_sindi_without_pyvsag_is_one_error_line(tmp_path, monkeypatch, capsys):
    """pyvsag is optional: without it the index CLI says how to install it (exit 2, nothing written)."""
    import sys

    cfg = synth.SynthConfig(n_features=1024, doc_terms=20, query_terms=5, seed=1)
    docs, queries = synth.generate(cfg, 20, 2)
    vdir, _ = synth.write_collection(docs, queries, cfg, tmp_path, 100.0)
    monkeypatch.setitem(sys.modules, "pyvsag", None)  # `import pyvsag` now raises ModuleNotFoundError
    assert index_main(["--backend", "sindi", "--input", str(vdir), "--index", str(tmp_path / "ix")]) == 2
    err = capsys.readouterr().err
    assert "pip install pyvsag" in err and "Traceback" not in err
    assert not (tmp_path / "ix").exists()


def test_scores_beyond_float32_integers_are_warned_once(coll, capsys):
    """Above 2^24 SINDI's float32 sums are no longer exact integers: one warning line, not silence."""
    from pyserini_splare.search.base import QuantizedQuery
    from pyserini_splare.search.registry import open_searcher

    root, qs = coll
    q0 = next(iter(qs.values()))
    big = QuantizedQuery({t: 65_000 for t in q0})  # the largest query impact allowed: dot products above 2^24
    with open_searcher(root / "sindi") as s, _exact_scores(root) as ex:
        assert ex.batch_search({"q": big}, k=1)["q"][0][1] >= 2 ** 24  # the reference agrees it is that large
        capsys.readouterr()
        s.batch_search({"a": big, "b": big}, k=10)
        s.batch_search({"c": qs[next(iter(qs))]}, k=10)
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(err) == 1 and "2^24" in err[0]
