"""faiss backend: build from a dense vectors directory, search equals brute-force numpy top-k."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pyserini_splare._errors import UsageError
from pyserini_splare.index.__main__ import main as index_main

DIM = 16


def make_dense_dir(path, n_docs=300, shard=128, seed=0, dup=()):
    """A dense vectors directory as the encoder writes it: meta.json + part-*.ids.txt/.npy shards."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_docs, DIM)).astype(np.float32)
    for i, j in dup:  # exact duplicates give tied scores
        x[j] = x[i]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = [f"doc{i:04d}" for i in range(n_docs)]
    path.mkdir()
    for p, s in enumerate(range(0, n_docs, shard)):
        (path / f"part-{p:05d}.ids.txt").write_text("".join(f"{d}\n" for d in ids[s:s + shard]))
        np.save(path / f"part-{p:05d}.npy", x[s:s + shard])
    (path / "meta.json").write_text(json.dumps({
        "format": "pyserini_splare.dense/1", "dim": DIM, "count": n_docs,
        "encoder": {"type": "qwen3-embed", "path": "tiny"}, "normalized": True}))
    return ids, x


def brute_force(x, ids, q, k):
    scores = x @ q
    order = sorted(range(len(ids)), key=lambda i: (-float(scores[i]), ids[i]))[:k]
    return [(ids[i], float(scores[i])) for i in order]


def build(tmp_path, name, options=None, **kw):
    vec = tmp_path / "vec"
    ids, x = make_dense_dir(vec, **kw) if not vec.exists() else (None, None)
    out = tmp_path / name
    argv = ["--backend", "faiss", "--input", str(vec), "--index", str(out)]
    if options:
        argv += ["--options", json.dumps(options)]
    assert index_main(argv) == 0
    return out, ids, x


def test_flat_equals_brute_force(tmp_path):
    from pyserini_splare.index import read_index_meta
    from pyserini_splare.search.registry import open_searcher

    index, ids, x = build(tmp_path, "flat", dup=[(3, 200), (3, 17)])
    meta = read_index_meta(index)
    assert meta["backend"] == "faiss" and meta["build"]["count"] == 300
    assert meta["dense"]["encoder"] == {"type": "qwen3-embed", "path": "tiny"}
    from pyserini_splare.formats.docids import read_docids

    assert read_docids(index, 300).tolist() == ids  # the one docid table, in the order vectors were added
    assert not (index / "docids.txt").exists()
    rng = np.random.default_rng(1)
    qs = {f"q{i}": rng.standard_normal(DIM).astype(np.float32) for i in range(8)}
    qs["tie"] = x[3].copy()  # docs 3, 17, 200 tie at the top
    with open_searcher(index) as s:
        res = s.batch_search(qs, k=10, threads=1)
    for qid, q in qs.items():
        ref = brute_force(x, ids, q, 10)
        assert [d for d, _ in res[qid]] == [d for d, _ in ref]
        np.testing.assert_allclose([s for _, s in res[qid]], [s for _, s in ref], rtol=1e-5, atol=1e-6)
    assert [d for d, _ in res["tie"][:3]] == ["doc0003", "doc0017", "doc0200"]


def test_dense_shards_index_as_one_collection(tmp_path):
    """Two dense directories written by the one writer (as encode --shard-id 0/1 --shard-num 2 would)
    give the run of the unsharded directory; mismatched or overlapping shards are refused."""
    from pyserini_splare.formats.vectors_writer import VectorsWriter
    from pyserini_splare.index.faiss import build_faiss_index
    from pyserini_splare.search.registry import open_searcher

    rng = np.random.default_rng(5)
    x = rng.standard_normal((60, DIM)).astype(np.float32)
    ids = [f"d{i:02d}" for i in range(60)]
    enc = {"type": "qwen3-embed", "path": "tiny"}
    for name, rows in (("all", range(60)), ("s0", range(0, 60, 2)), ("s1", range(1, 60, 2)), ("dup", range(1, 5))):
        with VectorsWriter(tmp_path / name, dim=DIM, encoder=enc, part_size=7) as w:
            w.write_dense([ids[i] for i in rows], x[list(rows)])
    build_faiss_index([str(tmp_path / "all")], str(tmp_path / "i_all"))
    meta = build_faiss_index([str(tmp_path / "s0"), str(tmp_path / "s1")], str(tmp_path / "i_sh"))
    assert meta["build"]["count"] == 60 and len(meta["source"]) == 2
    qs = {f"q{i}": rng.standard_normal(DIM).astype(np.float32) for i in range(5)}
    with open_searcher(tmp_path / "i_all") as a, open_searcher(tmp_path / "i_sh") as b:
        ra, rb = a.batch_search(qs, k=10), b.batch_search(qs, k=10)
    for q in qs:
        assert [d for d, _ in ra[q]] == [d for d, _ in rb[q]] == [d for d, _ in brute_force(x, ids, qs[q], 10)]
    with pytest.raises(UsageError, match="duplicate document id 'd01'"):
        build_faiss_index([str(tmp_path / "s1"), str(tmp_path / "dup")], str(tmp_path / "i_bad"))
    assert not (tmp_path / "i_bad").exists()
    with VectorsWriter(tmp_path / "other", dim=DIM, encoder={"type": "qwen3-embed", "path": "other"}) as w:
        w.write_dense(["z"], x[:1])
    with pytest.raises(UsageError, match="differ in encoder"):
        build_faiss_index([str(tmp_path / "s0"), str(tmp_path / "other")], str(tmp_path / "i_bad"))


def test_tie_at_cutoff_resolved_by_docid(tmp_path):
    from pyserini_splare.search.faiss import FaissSearcher

    # five identical vectors: asking for 2 must return the two smallest docids
    index, ids, x = build(tmp_path, "flat", dup=[(250, 10), (250, 99), (250, 5), (250, 140)])
    with FaissSearcher(index) as s:
        hits = s.search(x[250], k=2)
    assert [d for d, _ in hits] == ["doc0005", "doc0010"]


@pytest.mark.parametrize("options", [
    {"type": "hnsw", "M": 16, "efConstruction": 64, "efSearch": 64},
    {"type": "ivf", "nlist": 8, "nprobe": 8},
    {"type": "ivf", "nlist": 8, "nprobe": 8, "pq": 4, "nbits": 4},
])
def test_approximate_indexes(tmp_path, options):
    from pyserini_splare.search.faiss import FaissSearcher

    index, ids, x = build(tmp_path, options["type"], options)
    rng = np.random.default_rng(2)
    qs = {f"q{i}": rng.standard_normal(DIM).astype(np.float32) for i in range(20)}
    with FaissSearcher(index) as s:
        res = s.batch_search(qs, k=10)
    recall = np.mean([len({d for d, _ in res[q]} & {d for d, _ in brute_force(x, ids, v, 10)}) / 10
                      for q, v in qs.items()])
    # nprobe = nlist and a full HNSW beam are exhaustive at this size. PQ with 4 codes of 4 bits on
    # unstructured random vectors is a coarse sketch: this checks the path, not PQ's quality.
    assert recall >= (0.3 if "pq" in options else 0.95)


def test_searcher_options_and_query_checks(tmp_path):
    from pyserini_splare.search.faiss import FaissSearcher

    index, ids, x = build(tmp_path, "hnsw", {"type": "hnsw", "M": 8})
    with pytest.raises(UsageError, match="IVF"):
        FaissSearcher(index, nprobe=4)
    s = FaissSearcher(index, efSearch=32)
    with pytest.raises(UsageError, match="expected a vector of 16"):
        s.batch_search({"q": np.ones(DIM + 1)}, k=3)


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    make_dense_dir(tmp_path / "vec")
    cases = [
        (["--options", '{"type": "lsh"}'], "type must be one of"),
        (["--options", '{"type": "ivf", "nlist": 10000}'], "exceeds"),
        (["--options", '{"type": "hnsw", "M": "x"}'], "faiss option M must be an integer >= 1, got 'x'"),
        (["--options", '{"M": 16}'], "faiss option(s) M apply to type hnsw, not flat"),
        (["--options", '{"efs": 3}'], "unknown faiss option"),
    ]
    for extra, needle in cases:
        assert index_main(["--backend", "faiss", "--input", str(tmp_path / "vec"),
                           "--index", str(tmp_path / "out"), *extra]) == 2
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1
        assert not (tmp_path / "out").exists()
    # a shard whose vectors do not match its docids
    np.save(tmp_path / "vec" / "part-00000.npy", np.zeros((3, DIM), np.float32))
    assert index_main(["--backend", "faiss", "--input", str(tmp_path / "vec"), "--index", str(tmp_path / "out")]) == 2
    assert "shape (3, 16) does not match 128 ids" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()
    # sparse vectors directory
    (tmp_path / "sparse").mkdir()
    (tmp_path / "sparse" / "meta.json").write_text('{"format": "pyserini_splare.vectors/1"}')
    assert index_main(["--backend", "faiss", "--input", str(tmp_path / "sparse"), "--index", str(tmp_path / "o2")]) == 2
    assert "not dense vectors" in capsys.readouterr().err


def test_old_layout_with_docids_txt_is_refused(tmp_path, capsys):
    """A faiss folder built before docids.npy (ids in docids.txt) is refused with one line that names the
    rebuild, before index.faiss is read; the rebuild it names gives brute force's ranking again."""
    from pyserini_splare.search.__main__ import main as search_main
    from pyserini_splare.search.registry import open_searcher

    index, ids, x = build(tmp_path, "old")
    (index / "docids.txt").write_text("".join(f"{d}\n" for d in ids))  # what the old builder wrote
    (index / "docids.npy").unlink()
    (index / "index.faiss").write_bytes(b"not read")  # refused before faiss loads the (large) index
    with pytest.raises(UsageError, match="rebuild it"):
        open_searcher(index)
    topics = tmp_path / "topics.tsv"
    topics.write_text("q1\tcats\n")
    assert search_main(["--index", str(index), "--topics", str(topics), "--encoder", "qwen3-embed:unused",
                        "--output", str(tmp_path / "run.txt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "docids.txt, no docids.npy" in err
    assert f"python -m pyserini_splare.index --backend faiss --input VECTORS --index {index} --overwrite" in err
    assert not (tmp_path / "run.txt").exists()
    assert index_main(["--backend", "faiss", "--input", str(tmp_path / "vec"), "--index", str(index),
                       "--overwrite"]) == 0
    assert not (index / "docids.txt").exists()
    with open_searcher(index) as s:
        got = s.search(x[7], k=5)
    assert [d for d, _ in got] == [d for d, _ in brute_force(x, ids, x[7], 5)]


def test_end_to_end_encode_index_search(tmp_path):
    """Qwen3-Embedding encoder (tiny random Qwen3, offline) -> faiss index -> search CLI: the run equals
    a brute-force inner-product ranking of the encoder's own document and query embeddings."""
    from pyserini_splare.encode import load_encoder
    from pyserini_splare.encode.__main__ import main as encode_main
    from pyserini_splare.formats.runs import read_trec_run
    from pyserini_splare.search.__main__ import main as search_main
    from pyserini_splare.testing.tiny_models import qwen3_embedder

    texts = ["cats purr softly", "dogs bark loudly", "sparse retrieval with sae latents", "dense retrieval of news",
             "the cat and the dog", "persian russian chinese news"]
    queries = {"q1": "cat", "q2": "dense news retrieval", "q3": "sae latents"}
    model = qwen3_embedder(tmp_path / "qwen3", texts + list(queries.values()))
    spec = f"qwen3-embed:{model}"
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    topics = tmp_path / "topics.tsv"
    topics.write_text("".join(f"{q}\t{t}\n" for q, t in queries.items()))
    assert encode_main(["--corpus", str(corpus), "--encoder", spec, "--output", str(tmp_path / "vec")]) == 0
    assert index_main(["--backend", "faiss", "--input", str(tmp_path / "vec"), "--index", str(tmp_path / "idx")]) == 0
    run = tmp_path / "run.txt"
    assert search_main(["--index", str(tmp_path / "idx"), "--topics", str(topics), "--encoder", spec,
                        "--hits", "4", "--output", str(run)]) == 0
    got = read_trec_run(run)
    enc = load_encoder(spec)
    d = enc.encode(texts, "doc")
    for qid, text in queries.items():
        ref = brute_force(d, [f"d{i}" for i in range(len(texts))], enc.encode([text], "query")[0], 4)
        assert list(got[qid]) == [doc for doc, _ in ref]
        np.testing.assert_allclose([got[qid][doc] for doc, _ in ref], [s for _, s in ref], atol=1e-5)
