"""The vectors directory (formats/vectors_*.py): keyed atomic parts, resume, shards as one
collection, the impact bound on every backend, foreign JsonVectorCollection folders, query quantization.

References are independent of the code under test: files written by hand or by Pyserini's own writer,
brute-force dot products over the integers in the files, an uninterrupted run's bytes.
"""

from __future__ import annotations

import json
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from pyserini_splare._errors import UsageError
from pyserini_splare.formats.idhash import IdHashSet, find_repeated, id_hash
from pyserini_splare.formats.quant import MAX_IMPACT
from pyserini_splare.formats.query_vectors import load_query_vectors, quantize_query
from pyserini_splare.formats.spaces import PrefixedSpace
from pyserini_splare.formats.sparse import SparseVector
from pyserini_splare.formats.vectors_meta import read_meta
from pyserini_splare.formats.vectors_reader import iter_vectors, open_collection
from pyserini_splare.formats.vectors_writer import VectorsWriter


def _tree(d: Path) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _docs(n=30, seed=0, n_features=200):
    rng = np.random.default_rng(seed)
    return [(f"d{i:03d}", SparseVector(rng.choice(n_features, 12, replace=False), rng.random(12) * 3 + 0.01))
            for i in range(n)]


def _brute_force(files_vectors: dict[str, dict[str, int]], q: dict[str, int], k: int):
    """Dot products over the integers read from the files, ranked by (-score, docid)."""
    scores = [(d, float(sum(w * q.get(t, 0) for t, w in v.items()))) for d, v in files_vectors.items()]
    return sorted(((d, s) for d, s in scores if s > 0), key=lambda h: (-h[1], h[0]))[:k]


def _read_jsonl_dir(d: Path) -> dict[str, dict[str, int]]:
    out = {}
    for p in sorted(d.glob("*.json*")):
        if p.name == "meta.json":
            continue
        for line in p.read_text().splitlines():
            o = json.loads(line)
            out[str(o["id"])] = o["vector"]
    return out


# --------------------------------------------------------------------------------------------
# ids
# --------------------------------------------------------------------------------------------


def test_id_hash_set_finds_repeats_and_names_both_places():
    s = IdHashSet()
    for d in ["a", "b", "c", "b"]:
        s.add(d)
    s.extend_hashes(np.array([id_hash("z"), id_hash("c")]))
    assert s.duplicates() == {id_hash("b"), id_hash("c")} and len(s) == 6
    items = [("a", "f:1"), ("b", "f:2"), ("c", "f:3"), ("b", "f:4")]
    assert find_repeated(items, s.duplicates()) == "f:4: duplicate document id 'b' (first at f:2)"
    # the hash is BLAKE2b-64 of the UTF-8 bytes, little-endian signed (written out here)
    import hashlib

    assert id_hash("d1") == int.from_bytes(hashlib.blake2b(b"d1", digest_size=8).digest(), "little", signed=True)


# --------------------------------------------------------------------------------------------
# keyed parts (Ray workers), streaming, resume
# --------------------------------------------------------------------------------------------


def _write_part(args):
    writer, key, docs = args
    with writer.part(key) as p:
        for d, v in docs:
            p.add(d, v)
    return key


def test_keyed_parts_from_several_processes_equal_one_streaming_writer(tmp_path):
    space, docs = PrefixedSpace("L", 200), _docs(30)
    with VectorsWriter(tmp_path / "stream", space=space, part_size=10) as w:
        for d, v in docs:
            w.write(d, v)
    keyed = VectorsWriter(tmp_path / "keyed", space=space, part_size=10)
    blocks = [(keyed, k, docs[10 * k:10 * k + 10]) for k in (2, 0, 1)]
    with ProcessPoolExecutor(2) as ex:  # the writer pickles; each worker writes its own parts
        assert sorted(ex.map(_write_part, blocks)) == [0, 1, 2]
    keyed.finish()
    assert _tree(tmp_path / "keyed") == _tree(tmp_path / "stream")


def test_a_retried_part_replaces_never_adds_and_a_failed_part_leaves_nothing(tmp_path):
    space, docs = PrefixedSpace("L", 200), _docs(20)
    w = VectorsWriter(tmp_path / "v", space=space)
    _write_part((w, "blk0", docs[:10]))
    _write_part((w, "blk0", docs[:10]))  # the retry of a block: same key, same bytes, counted once
    with pytest.raises(RuntimeError):
        with w.part("blk1") as p:
            p.add(*docs[10])
            raise RuntimeError("worker died")
    assert w.done("blk1") is None and w.done("blk0")["documents"] == 10
    assert [p.name for p in w.tmp.iterdir() if not p.name.startswith("_")] == ["part-blk0.jsonl"]
    _write_part((w, "blk1", docs[10:]))
    meta = w.finish()
    assert meta.stats["documents"] == 20
    assert [d for d, _ in iter_vectors(tmp_path / "v")] == [d for d, _ in docs]
    with pytest.raises(ValueError):
        w.part("a b").__enter__()


def test_resume_is_byte_identical_and_other_settings_are_refused(tmp_path):
    space, docs = PrefixedSpace("L", 200), _docs(25)
    ref = VectorsWriter(tmp_path / "ref", space=space, topk=8, config={"corpus": "x"})
    for k in range(3):
        _write_part((ref, k, docs[10 * k:10 * k + 10]))
    ref.finish({"source": "x"})

    w = VectorsWriter(tmp_path / "out", space=space, topk=8, config={"corpus": "x"})
    _write_part((w, 0, docs[:10]))
    with pytest.raises(KeyboardInterrupt):  # killed in the middle of part 1
        with w.part(1) as p:
            p.add(*docs[10])
            raise KeyboardInterrupt
    assert (tmp_path / "out.partial").is_dir() and not (tmp_path / "out").exists()
    with pytest.raises(UsageError, match=r"other settings \(topk\)"):
        VectorsWriter(tmp_path / "out", space=space, topk=9, config={"corpus": "x"})
    again = VectorsWriter(tmp_path / "out", space=space, topk=8, config={"corpus": "x"})
    assert again.resumed and again.done(0)["documents"] == 10 and again.done(1) is None
    for k in (1, 2):
        _write_part((again, k, docs[10 * k:10 * k + 10]))
    again.finish({"source": "x"})
    assert _tree(tmp_path / "out") == _tree(tmp_path / "ref")


@pytest.mark.slow
def test_encode_killed_after_a_part_resumes_byte_identical(tmp_path, splade_tiny_path, monkeypatch):
    """encode --part-size 4, interrupted after its second part is committed, rerun: same bytes as a run
    never interrupted."""
    from pyserini_splare.encode.__main__ import main as encode_main

    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "text": f"sparse retrieval document number {i} "
                                          + "about cats " * (i % 4)}) + "\n" for i in range(11)))
    args = ["--corpus", str(corpus), "--encoder", f"splade:{splade_tiny_path}", "--part-size", "4"]
    assert encode_main([*args, "--output", str(tmp_path / "ref")]) == 0
    real_commit, commits = VectorsWriter._commit, []

    def commit_then_die(self, *a):
        real_commit(self, *a)
        commits.append(1)
        if len(commits) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(VectorsWriter, "_commit", commit_then_die)
    assert encode_main([*args, "--output", str(tmp_path / "out")]) == 130
    assert not (tmp_path / "out").exists() and (tmp_path / "out.partial" / "part-00001.jsonl").is_file()
    monkeypatch.setattr(VectorsWriter, "_commit", real_commit)
    assert encode_main([*args, "--output", str(tmp_path / "out")]) == 0
    assert _tree(tmp_path / "out") == {k: v for k, v in _tree(tmp_path / "ref").items()}


def test_a_checkpointed_part_resumes_where_it_was_and_ends_byte_identical(tmp_path):
    space, docs = PrefixedSpace("L", 200), _docs(10)
    ref = VectorsWriter(tmp_path / "ref", space=space)
    _write_part((ref, 0, docs))
    ref.finish()
    w = VectorsWriter(tmp_path / "out", space=space)
    with pytest.raises(KeyboardInterrupt):
        with w.part(0, resume=True) as p:
            for d, v in docs[:5]:
                p.add(d, v)
            p.checkpoint()
            for d, v in docs[5:8]:  # written after the checkpoint: lost, and cut from the file
                p.add(d, v)
            raise KeyboardInterrupt
    again = VectorsWriter(tmp_path / "out", space=space)
    assert again.resumed and again.done(0) is None
    with again.part(0, resume=True) as p:
        assert p.resumed_documents == 5
        for d, v in docs[5:]:
            p.add(d, v)
    again.finish()
    assert _tree(tmp_path / "out") == _tree(tmp_path / "ref")
    # without resume (a retried Ray block), a checkpoint is discarded and the part starts over
    w = VectorsWriter(tmp_path / "o2", space=space)
    with pytest.raises(KeyboardInterrupt):
        with w.part(0, resume=True) as p:
            p.add(*docs[0])
            p.checkpoint()
            raise KeyboardInterrupt
    with w.part(0) as p:
        assert p.resumed_documents == 0


def test_encode_loop_checkpoints_inside_a_part(tmp_path):
    """run_parts with a stand-in encoder: one 1,000-document part, checkpoints after every window
    (batch 1 -> 50 documents), killed at document 130: the rerun encodes only from document 100 on."""
    from pyserini_splare.encode.pipeline import Settings, run_parts

    space = PrefixedSpace("L", 300)
    source = [(f"d{i}", f"text {i}", f"c:{i}") for i in range(160)]
    seen: list[str] = []

    def encode(texts, die_at=None):
        out = []
        for t in texts:
            i = int(t.split()[1])
            if i == die_at:
                raise KeyboardInterrupt
            seen.append(t)
            out.append(SparseVector([i % 300, (7 * i + 1) % 300], [1.0 + i / 100, 0.5]))
        return out

    settings = Settings(part_size=1000, batch_size=1, checkpoint_seconds=1e-9)
    ref = VectorsWriter(tmp_path / "ref", space=space)
    run_parts(ref, source, settings, encode)
    ref.finish()
    w = VectorsWriter(tmp_path / "out", space=space)
    with pytest.raises(KeyboardInterrupt):
        run_parts(w, source, settings, lambda t: encode(t, die_at=130))
    seen.clear()
    again = VectorsWriter(tmp_path / "out", space=space)
    run_parts(again, source, settings, encode)
    again.finish()
    assert seen[0] == "text 100" and len(seen) == 60  # the first 100 came from the checkpoint
    assert _tree(tmp_path / "out") == _tree(tmp_path / "ref")


# --------------------------------------------------------------------------------------------
# shards as one collection
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shards(tmp_path_factory, splade_tiny_path):
    """The demo corpus encoded with SPLADE-tiny whole and as two shards (encode --shard-id 0/1 --shard-num 2)."""
    from pyserini_splare.encode.__main__ import main as encode_main

    root = tmp_path_factory.mktemp("shards")
    corpus = Path(__file__).resolve().parents[1] / "pyserini_splare" / "demo" / "data" / "corpus.jsonl"
    base = ["--corpus", str(corpus), "--encoder", f"splade:{splade_tiny_path}", "--part-size", "16"]
    assert encode_main([*base, "--output", str(root / "all")]) == 0
    for i in (0, 1):
        assert encode_main([*base, "--shard-id", str(i), "--shard-num", "2", "--output", str(root / f"s{i}")]) == 0
    return root


@pytest.mark.slow
def test_shards_index_as_one_collection_with_the_unsharded_run(shards, tmp_path):
    from pyserini_splare.index.exact import build_exact_index
    from pyserini_splare.index.seismic import build_seismic_index
    from pyserini_splare.search.base import QuantizedQuery
    from pyserini_splare.search.registry import open_searcher

    s0, s1 = shards / "s0", shards / "s1"
    build_exact_index([str(shards / "all")], str(tmp_path / "whole"))
    meta = build_exact_index([str(s0), str(s1)], str(tmp_path / "sharded"))
    assert meta["source"] == [str(s0.resolve()), str(s1.resolve())]
    st = meta["vectors"]["stats"]
    whole = read_meta(shards / "all").stats
    assert st["documents"] == whole["documents"] and st["postings"] == whole["postings"]
    assert st["l0"]["before_pruning_mean"] == pytest.approx(whole["l0"]["before_pruning_mean"])
    assert [s["shard"] for s in st["shards"]] == [{"id": 0, "num": 2}, {"id": 1, "num": 2}]
    vectors = _read_jsonl_dir(shards / "all")
    queries = {f"q{i}": QuantizedQuery(dict(list(v.items())[:15])) for i, v in enumerate(list(vectors.values())[:12])}
    with open_searcher(tmp_path / "whole") as a, open_searcher(tmp_path / "sharded") as b:
        ra, rb = a.batch_search(queries, k=20), b.batch_search(queries, k=20)
    assert ra == rb  # docids and scores
    for qid, q in queries.items():
        assert ra[qid] == _brute_force(vectors, q, 20)
    # Seismic reads the shards' part files as one collection too: what it returns carries the exact
    # scores of those documents (ids map across shards), and it finds nearly all of the exact top 20
    build_seismic_index([str(s0), str(s1)], str(tmp_path / "seismic"), n_postings=1000, max_fraction=10,
                        summary_energy=1.0, centroid_fraction=1.0)
    with open_searcher(tmp_path / "seismic", query_cut=1000, heap_factor=1e-6) as s:
        rs = s.batch_search(queries, k=20)
    for qid, q in queries.items():
        exact = dict(_brute_force(vectors, q, 1000))
        assert all(exact[d] == sc for d, sc in rs[qid])
    recall = np.mean([len({d for d, _ in rs[q]} & {d for d, _ in ra[q]}) / len(ra[q]) for q in queries])
    assert recall >= 0.9


@pytest.mark.slow  # builds Seismic indexes of the shards and of the whole
def test_index_cli_with_two_shards_gives_the_unsharded_run(shards, tmp_path):
    """`index --input S0 S1` then `search`: the run file equals the unsharded index's, byte for byte."""
    from pyserini_splare.index.__main__ import main as index_main
    from pyserini_splare.search.__main__ import main as search_main

    vectors = _read_jsonl_dir(shards / "all")
    qfile = tmp_path / "q.jsonl"
    qfile.write_text("".join(json.dumps({"id": f"q{i}", "vector": dict(list(v.items())[:10])}) + "\n"
                             for i, v in enumerate(list(vectors.values())[:8])))
    assert index_main(["--backend", "exact", "--input", str(shards / "s0"), str(shards / "s1"),
                       "--index", str(tmp_path / "sh")]) == 0
    assert index_main(["--backend", "exact", "--input", str(shards / "all"), "--index", str(tmp_path / "all")]) == 0
    for name in ("sh", "all"):
        assert search_main(["--index", str(tmp_path / name), "--query-vectors", str(qfile),
                            "--query-vectors-quantized", "--output", str(tmp_path / f"{name}.run"),
                            "--hits", "15", "--run-tag", "t"]) == 0
    run = (tmp_path / "sh.run").read_text()
    assert run == (tmp_path / "all.run").read_text() and len(run.splitlines()) > 8


def _small_dir(path, space=None, scale=100.0, encoder=None, ids=("a", "b")):
    with VectorsWriter(path, space=space or PrefixedSpace("L", 100), quant_scale=scale,
                       encoder=encoder or {"spec": "x"}) as w:
        for d in ids:
            w.write(d, SparseVector([1, 2], [1.0, 0.5]))
    return path


@pytest.mark.parametrize("other, what", [
    (dict(space=PrefixedSpace("L", 200)), "feature space"),
    (dict(scale=50.0), "quantization scale"),
    (dict(encoder={"spec": "y"}), "encoder"),
])
def test_mismatched_shards_are_refused(tmp_path, other, what):
    from pyserini_splare.index.exact import build_exact_index

    a = _small_dir(tmp_path / "a")
    b = _small_dir(tmp_path / "b", ids=("c",), **other)
    with pytest.raises(UsageError, match=f"differ in {what}") as e:
        build_exact_index([str(a), str(b)], str(tmp_path / "idx"))
    assert "\n" not in str(e.value) and not (tmp_path / "idx").exists() and not (tmp_path / "idx.partial").exists()


def test_overlapping_shards_are_refused_on_every_backend(tmp_path):
    from pyserini_splare.index.exact import build_exact_index
    from pyserini_splare.index.seismic import build_seismic_index

    a = _small_dir(tmp_path / "a", ids=("x", "y"))
    b = _small_dir(tmp_path / "b", ids=("z", "y"))
    for name, build in (("exact", build_exact_index), ("seismic", build_seismic_index)):
        with pytest.raises(UsageError, match="duplicate document id 'y'") as e:
            build([str(a), str(b)], str(tmp_path / name))
        assert "b/part-00000.jsonl:2" in str(e.value) and "a/part-00000.jsonl:2" in str(e.value)
        assert not (tmp_path / name).exists() and not (tmp_path / f"{name}.partial").exists()
    with pytest.raises(UsageError, match="given twice"):
        open_collection([a, tmp_path / "a"])


def test_index_cli_refuses_mismatched_shards_in_one_line(tmp_path, capsys):
    """Through the index CLI when it takes several --input directories (the registry passes the list)."""
    from pyserini_splare.index.__main__ import main as index_main

    a = _small_dir(tmp_path / "a")
    b = _small_dir(tmp_path / "b", ids=("c",), scale=10.0)
    rc = index_main(["--backend", "exact", "--input", str(a), str(b), "--index", str(tmp_path / "idx")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and not (tmp_path / "idx").exists()


# --------------------------------------------------------------------------------------------
# the impact bound, on every backend of this module's owner
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("weight", [MAX_IMPACT + 1, 10**9, 2 * 10**9, 10**12, 10**30])
def test_impacts_beyond_the_bound_are_refused_by_exact_and_seismic(tmp_path, weight):
    from pyserini_splare.index.exact import build_exact_index
    from pyserini_splare.index.seismic import build_seismic_index

    d = _small_dir(tmp_path / "v")
    part = d / "part-00000.jsonl"
    lines = part.read_text().splitlines()
    rec = json.loads(lines[1])
    rec["vector"]["L1"] = weight
    part.write_text(lines[0] + "\n" + json.dumps(rec) + "\n")
    for name, build in (("exact", build_exact_index), ("seismic", build_seismic_index)):
        with pytest.raises(UsageError, match=f"exceeds the largest integer impact {MAX_IMPACT:,}") as e:
            build([str(d)], str(tmp_path / name))
        assert f"{part}:2" in str(e.value) and not (tmp_path / name).exists()
    # the bound itself is accepted, and scores stay exact (Seismic's float16 holds 65,504)
    rec["vector"]["L1"] = MAX_IMPACT
    part.write_text(lines[0] + "\n" + json.dumps(rec) + "\n")
    build_seismic_index([str(d)], str(tmp_path / "ok"))


def test_the_writer_and_the_query_side_apply_the_same_bound(tmp_path):
    with pytest.raises(UsageError, match="exceeds the largest integer impact"):
        _small_dir(tmp_path / "v", scale=100_000.0)  # 1.0 x 100,000
    assert not (tmp_path / "v").exists() and not (tmp_path / "v.partial").exists()
    with pytest.raises(UsageError, match="exceeds the largest integer impact"):
        quantize_query({"L1": 1e30}, 100.0)
    with pytest.raises(UsageError, match="exceeds the largest integer impact"):
        quantize_query({"L1": 10**30}, 100.0, quantized=True)
    assert quantize_query({"L1": MAX_IMPACT}, 100.0, quantized=True) == {"L1": MAX_IMPACT}


# --------------------------------------------------------------------------------------------
# explicit query quantization
# --------------------------------------------------------------------------------------------


def test_query_weights_are_model_outputs_whatever_their_json_type(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text('{"id": "q", "vector": {"L1": 1, "L2": 0.004, "L3": 2}}\n')
    b.write_text('{"id": "q", "vector": {"L1": 1.0, "L2": 0.004, "L3": 2.0}}\n')
    assert load_query_vectors(a, 100.0) == load_query_vectors(b, 100.0) == {"q": {"L1": 100, "L3": 200}}
    # declared quantized: integers (and integral floats) as they are, zeros dropped, a fraction refused
    c = tmp_path / "c.jsonl"
    c.write_text('{"id": "q", "vector": {"L1": 3, "L2": 0, "L3": 7.0}}\n')
    assert load_query_vectors(c, 100.0, quantized=True) == {"q": {"L1": 3, "L3": 7}}
    with pytest.raises(UsageError, match=r"L2.*not an integer"):
        load_query_vectors(a, 100.0, quantized=True)


# --------------------------------------------------------------------------------------------
# foreign JsonVectorCollection folders (no meta.json)
# --------------------------------------------------------------------------------------------


def _foreign(d: Path, docs: dict[str, dict]) -> Path:
    d.mkdir()
    items = list(docs.items())
    for k, chunk in enumerate((items[:len(items) // 2], items[len(items) // 2:])):
        (d / f"vectors{k}.jsonl").write_text("".join(json.dumps({"id": i, "contents": "", "vector": v}) + "\n"
                                                     for i, v in chunk))
    return d


def test_foreign_integer_folder_indexes_with_exact_and_seismic(tmp_path):
    from pyserini_splare.index.exact import build_exact_index
    from pyserini_splare.index.seismic import build_seismic_index
    from pyserini_splare.search.base import QuantizedQuery
    from pyserini_splare.search.registry import open_searcher

    rng = np.random.default_rng(4)
    words = ["cat", "##ing", "dog", "\"", "über", "the", "x1", "L5"] + [f"w{i}" for i in range(40)]
    docs = {f"doc{i}": {t: int(rng.integers(1, 300)) for t in rng.choice(words, 10, replace=False)} for i in range(60)}
    d = _foreign(tmp_path / "f", docs)
    m1 = build_exact_index([str(d)], str(tmp_path / "exact"))
    m2 = build_seismic_index([str(d)], str(tmp_path / "seismic"), n_postings=1000, max_fraction=10,
                        summary_energy=1.0, centroid_fraction=1.0)
    for m in (m1, m2):
        assert m["vectors"]["foreign"] is True and m["vectors"]["feature_space"]["type"] == "foreign"
        assert m["vectors"]["quant_scale"] == 1.0
    queries = {f"q{i}": QuantizedQuery({t: int(rng.integers(1, 50)) for t in rng.choice(words, 4, replace=False)})
               for i in range(10)}
    with open_searcher(tmp_path / "exact") as ex, open_searcher(tmp_path / "seismic", query_cut=100,
                                                                 heap_factor=1e-6) as se:
        got_ex, got_se = ex.batch_search(queries, k=10), se.batch_search(queries, k=10)
    for qid, q in queries.items():
        assert got_ex[qid] == _brute_force(docs, q, 10)
    assert got_se == got_ex


def test_foreign_float_weights_need_a_scale(tmp_path):
    from pyserini_splare.index.exact import build_exact_index
    from pyserini_splare.search.base import QuantizedQuery
    from pyserini_splare.search.registry import open_searcher

    docs = {"a": {"x": 0.5, "y": 1.25}, "b": {"x": 2.0, "z": 0.001}, "c": {"y": 3}}
    d = _foreign(tmp_path / "f", docs)
    with pytest.raises(UsageError, match="float weight .* --quant-scale S"):
        build_exact_index([str(d)], str(tmp_path / "idx"))
    assert not (tmp_path / "idx").exists()
    meta = build_exact_index([str(d)], str(tmp_path / "idx"), quant_scale=100)
    assert meta["vectors"]["quant_scale"] == 100.0
    quantized = {i: {t: round(w * 100) for t, w in v.items() if round(w * 100) > 0} for i, v in docs.items()}
    q = QuantizedQuery({"x": 2, "y": 1, "z": 5})
    with open_searcher(tmp_path / "idx") as s:
        assert s.search(q, k=10) == _brute_force(quantized, q, 10)


@pytest.mark.jvm
def test_a_folder_written_by_pyserinis_own_encoder_indexes(tmp_path, splade_tiny_path):
    """Pyserini 1.6's SpladeDocumentEncoder + JsonlRepresentationWriter (its `encode` CLI's writer):
    WordPiece strings as terms, weights round(w * 256 / 5) as JSON ints (zeros included)."""
    import os

    from pyserini_splare._java import start_jvm
    from pyserini_splare.index.exact import build_exact_index
    from pyserini_splare.index.seismic import build_seismic_index
    from pyserini_splare.search.base import QuantizedQuery
    from pyserini_splare.search.registry import open_searcher

    os.environ.setdefault("OPENAI_API_KEY", "unused")  # pyserini.encode builds an OpenAI client at import
    start_jvm()  # pyserini.encode imports Anserini classes: our JVM (pyserini_splare._java), not pyserini's
    from pyserini.encode import JsonlRepresentationWriter, SpladeDocumentEncoder

    texts = ["sparse retrieval with learned term weights", "the cat sat on the mat", "lucene impact indexes",
             "neural ranking models for search", "cats and dogs", "an inverted index of documents"]
    ids = [f"p{i}" for i in range(len(texts))]
    enc = SpladeDocumentEncoder(str(splade_tiny_path), device="cpu")
    out = tmp_path / "pyserini"
    writer = JsonlRepresentationWriter(str(out))
    with writer:
        writer.write({"id": ids, "text": texts, "vector": enc.encode(texts)}, ["text"])
    assert sorted(p.name for p in out.iterdir()) == ["embeddings.jsonl"]
    docs = _read_jsonl_dir(out)
    build_exact_index([str(out)], str(tmp_path / "exact"))
    build_seismic_index([str(out)], str(tmp_path / "seismic"), n_postings=1000, max_fraction=10,
                        summary_energy=1.0, centroid_fraction=1.0)
    q = QuantizedQuery({"cat": 50, "index": 30, "retrieval": 20})
    with open_searcher(tmp_path / "exact") as ex, open_searcher(tmp_path / "seismic", query_cut=100,
                                                                 heap_factor=1e-6) as se:
        assert ex.search(q, k=10) == _brute_force(docs, q, 10) == se.search(q, k=10)
        assert len(ex.search(q, k=10)) >= 2
