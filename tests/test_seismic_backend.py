"""Seismic backend on a topic-structured SPLARE-shaped collection (131,072-feature space -> LV variant).

The collection is CI-sized: 4,000 documents drawn from the topic model of pyserini_splare.testing.synth,
using 8,192 active features of the 131,072-latent space (Seismic's build cost grows with the number of
distinct terms; docs/benchmarks.md has the full-size numbers).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from pyserini_splare.index.__main__ import main as index_main
from pyserini_splare.search.__main__ import main as search_main

from pyserini_splare.testing import synth

pytestmark = pytest.mark.slow  # a module fixture builds a 4,000-document Seismic index


@pytest.fixture(scope="module")
def coll(tmp_path_factory):
    root = tmp_path_factory.mktemp("seismic")
    cfg = synth.SynthConfig(n_features=131072, doc_terms=120, query_terms=30, active_features=8192, seed=11)
    docs, queries = synth.generate(cfg, 4000, 60)
    vdir, qfile = synth.write_collection(docs, queries, cfg, root, 100.0)
    for b in ("exact", "seismic"):
        assert index_main(["--backend", b, "--input", str(vdir), "--index", str(root / b), "--threads", "2"]) == 0
    # the size-driven pruning option
    assert index_main(["--backend", "seismic", "--input", str(vdir), "--index", str(root / "seismic-auto"),
                       "--threads", "2", "--options", json.dumps({"n_postings": "auto"})]) == 0
    from pyserini_splare.formats.query_vectors import read_query_vectors
    from pyserini_splare.search.base import QuantizedQuery

    # synth writes integer impacts in the index's units: declared quantized (search --query-vectors-quantized)
    return root, vdir, qfile, {q: QuantizedQuery(v) for q, v in read_query_vectors(qfile).items()}


def recall(a, b, k):
    return np.mean([len({d for d, _ in a[q][:k]} & {d for d, _ in b[q][:k]}) / k for q in b])


def test_seismic_recall_at_defaults(coll):
    from pyserini_splare.index import read_index_meta
    from pyserini_splare.search.registry import open_searcher

    root, _, _, qs = coll
    meta = read_index_meta(root / "seismic")
    assert meta["backend"] == "seismic" and meta["variant"] == "LV"  # > 65,535 features: u32 components
    assert meta["vectors"]["feature_space"]["size"] == 131072
    with open_searcher(root / "seismic") as s, open_searcher(root / "exact") as ex:
        ref = ex.batch_search(qs, k=10)
        for threads in (1, 2):
            got = s.batch_search(qs, k=10, threads=threads)
            assert recall(got, ref, 10) >= 0.98
            # whatever Seismic returns carries exact scores (integer dot products)
            for q in qs:
                exact_scores = dict(ex.batch_search({q: qs[q]}, k=4000)[q])
                assert all(exact_scores[d] == sc for d, sc in got[q])


def test_seismic_exhaustive_equals_exact(coll, tmp_path):
    """No pruning (n_postings x max_fraction > #docs), every query term, every block."""
    root, _, qfile, qs = coll
    from pyserini_splare.search.registry import open_searcher
    from pyserini_splare.search.seismic import SeismicSearcher

    with SeismicSearcher(root / "seismic", query_cut=1000, heap_factor=1e-6) as s, open_searcher(root / "exact") as ex:
        assert s.batch_search(qs, k=10, threads=2) == ex.batch_search(qs, k=10)
    # the same through the CLI flags, compared with the exact backend's run file
    runs = {}
    for b, extra in (("seismic", ["--query-cut", "1000", "--heap-factor", "0.000001"]), ("exact", [])):
        runs[b] = tmp_path / f"{b}.txt"
        assert search_main(["--index", str(root / b), "--query-vectors", str(qfile), "--query-vectors-quantized", "--output", str(runs[b]),
                            "--hits", "10", "--run-tag", "x", *extra]) == 0
    assert runs["seismic"].read_text() == runs["exact"].read_text()
    # --searcher-options still reaches the constructor
    r = tmp_path / "opts.txt"
    assert search_main(["--index", str(root / "seismic"), "--query-vectors", str(qfile), "--query-vectors-quantized", "--output", str(r),
                        "--hits", "10", "--run-tag", "x",
                        "--searcher-options", json.dumps({"query_cut": 1000, "heap_factor": 1e-6})]) == 0
    assert r.read_text() == runs["exact"].read_text()


def test_seismic_save_load_identical(coll, tmp_path):
    import seismic

    from pyserini_splare.index import read_index_meta
    from pyserini_splare.formats.seismic_index import quiet_stdout
    from pyserini_splare.search.seismic import SeismicSearcher

    root, vdir, _, qs = coll
    # in memory, built directly with the library (the options the index records), vs saved + loaded
    # through our searcher
    options = read_index_meta(root / "seismic")["seismic_build"]
    with quiet_stdout():
        built = seismic.SeismicIndexLV.build(str(vdir / "part-00000.jsonl"), load_content=False, num_threads=2,
                                             **options)
    shutil.copytree(root / "seismic", tmp_path / "copy")
    for f in (tmp_path / "copy").glob("*.seismic"):
        f.unlink()
    built.save(str(tmp_path / "copy" / "index"))
    s = SeismicSearcher(tmp_path / "copy")
    S = seismic.get_seismic_string()
    for qid, q in list(qs.items())[:20]:
        p = s.prepare(qid, q)
        mem = built.search(qid, np.asarray(list(p), dtype=S), np.fromiter(p.values(), np.float32), k=10,
                           query_cut=s.query_cut, heap_factor=s.heap_factor)
        assert s.search(q, k=10) == sorted(((d, float(sc)) for _, sc, d in mem), key=lambda h: (-h[1], h[0]))
    # and the index moved elsewhere answers as the original
    moved = tmp_path / "moved"
    shutil.copytree(root / "seismic", moved)
    a = SeismicSearcher(moved).batch_search(qs, k=20)
    assert a == SeismicSearcher(root / "seismic").batch_search(qs, k=20)


def test_unseen_query_features_are_ignored(coll):
    from pyserini_splare.search.seismic import SeismicSearcher

    root, vdir, _, qs = coll
    seen = set()
    for line in (vdir / "part-00000.jsonl").open():
        seen.update(json.loads(line)["vector"])
    unseen = next(f"L{i}" for i in range(131072) if f"L{i}" not in seen)
    s = SeismicSearcher(root / "seismic")
    for qid, q in list(qs.items())[:10]:
        assert s.search(type(q)({**q, unseen: 250}), k=10) == s.search(q, k=10)


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ") and "Traceback" not in "\n".join(err)
    return err[-1]


def test_seismic_bad_input(coll, tmp_path, capsys):
    root, vdir, qfile, _ = coll
    run = tmp_path / "run.txt"
    base = ["--index", str(root / "seismic"), "--output", str(run)]
    # k <= 0
    assert search_main([*base, "--query-vectors", str(qfile), "--hits", "0"]) == 2
    _one_line_error(capsys)
    from pyserini_splare._errors import UsageError
    from pyserini_splare.search.seismic import SeismicSearcher

    with pytest.raises(UsageError, match="k must be positive"):
        SeismicSearcher(root / "seismic").batch_search({"q": {"L1": 3}}, k=0)
    # query vectors from another encoder (SPLADE vocabulary; or a smaller SAE's latents)
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text(json.dumps({"id": "q1", "vector": {"apple": 1.0, "L5": 0.4}}) + "\n")
    assert search_main([*base, "--query-vectors", str(foreign)]) == 2
    assert "feature space" in _one_line_error(capsys)
    # bad search settings
    for extra in (["--heap-factor", "1.5"], ["--query-cut", "0"], ["--searcher-options", '{"nope": 1}']):
        assert search_main([*base, "--query-vectors", str(qfile), *extra]) == 2
        assert "searcher options" in _one_line_error(capsys)
    # --query-cut on a non-Seismic index
    assert search_main(["--index", str(root / "exact"), "--output", str(run), "--query-vectors", str(qfile),
                        "--query-cut", "5"]) == 2
    _one_line_error(capsys)
    # truncated / corrupt / missing index file
    for damage in ("truncate", "garbage", "missing"):
        bad = tmp_path / f"bad-{damage}"
        shutil.copytree(root / "seismic", bad)
        (f,) = bad.glob("*.seismic")
        if damage == "truncate":
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 3])
        elif damage == "garbage":
            f.write_bytes(b"\x00\xff" * 1000)
        else:
            f.unlink()
        assert search_main(["--index", str(bad), "--output", str(run), "--query-vectors", str(qfile)]) == 2
        assert "Seismic index" in _one_line_error(capsys)
    assert not run.exists()
    # bad build options
    assert index_main(["--backend", "seismic", "--input", str(vdir), "--index", str(tmp_path / "x"),
                       "--options", '{"summary_energy": 2}']) == 2
    assert "summary_energy" in _one_line_error(capsys)
    assert index_main(["--backend", "seismic", "--input", str(vdir), "--index", str(tmp_path / "x"),
                       "--options", '{"n_posting": 10}']) == 2
    assert "unknown seismic" in _one_line_error(capsys)
    assert not (tmp_path / "x").exists()


def test_seismic_u16_variant_for_small_spaces(tmp_path):
    """SPLADE's 30,522-term vocabulary fits u16 component ids: the default SeismicIndex is used."""
    from pyserini_splare.index import read_index_meta
    from pyserini_splare.search.registry import open_searcher

    cfg = synth.SynthConfig(**synth.PRESETS["splade"], active_features=3000, seed=2)
    cfg.doc_terms, cfg.query_terms = 50, 10
    docs, queries = synth.generate(cfg, 500, 10)
    vdir, qfile = synth.write_collection(docs, queries, cfg, tmp_path, 100.0)
    for b in ("seismic", "exact"):
        assert index_main(["--backend", b, "--input", str(vdir), "--index", str(tmp_path / b)]) == 0
    assert read_index_meta(tmp_path / "seismic")["variant"] == ""
    from pyserini_splare.formats.query_vectors import read_query_vectors
    from pyserini_splare.search.base import QuantizedQuery

    qs = {q: QuantizedQuery(v) for q, v in read_query_vectors(qfile).items()}
    with open_searcher(tmp_path / "seismic", query_cut=100, heap_factor=1e-6) as s, open_searcher(tmp_path / "exact") as ex:
        assert s.batch_search(qs, k=10) == ex.batch_search(qs, k=10)


def test_auto_n_postings(coll):
    """n_postings "auto" = max(100, round(0.1 x postings / distinct terms)), resolved and recorded."""
    from pyserini_splare.index import read_index_meta
    from pyserini_splare.index.seismic import auto_n_postings

    assert auto_n_postings(40_004_301, 131_072) == 100  # 100k pooled SPLARE: 10 % is 31, under the floor
    assert auto_n_postings(400_000_000, 131_072) == 305  # 1M pooled SPLARE: 10 % of 3,051.8
    assert auto_n_postings(1_000_000_000, 30_522) == 3276  # 10M-scale SPLADE: 10 % of 32,763
    root, vdir, _, _ = coll
    meta = read_index_meta(root / "seismic-auto")
    post, terms = meta["build"]["postings"], meta["build"]["distinct_terms"]
    assert meta["seismic_build"]["n_postings"] == max(100, round(0.1 * post / terms))
    assert read_index_meta(root / "seismic")["seismic_build"]["n_postings"] == 4000  # the default
