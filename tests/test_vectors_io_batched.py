"""The batched vectors I/O of ``encode --prune-from`` against the one-document-at-a-time reference.

The batched path (``prune_segments``, ``_SparsePart.add_many``, ``LineFormatter.parse_block`` /
``lines``) must keep, write and read exactly what ``SparseVector.mass_prune`` / ``topk`` applied to
one vector at a time, ``VectorsWriter.write`` one document at a time, and ``json.loads`` give:
random vectors with deliberate ties (dequantized integer weights, so many equal weights), the written
files compared byte for byte.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from pyserini_splare.formats.jsonvector import LineFormatter
from pyserini_splare.formats.spaces import PrefixedSpace, VocabSpace
from pyserini_splare.formats.sparse import SparseVector, prune_segments
from pyserini_splare.formats.vectors_reader import open_collection
from pyserini_splare.formats.vectors_writer import VectorsWriter, _SparsePart


def _random_block(rng, docs: int, size: int = 131_072, max_len: int = 600, levels: int = 30, scale: float = 100.0):
    """Vectors of 1..max_len distinct ids with weights q / scale for q in 1..levels: ties everywhere."""
    lens = rng.integers(1, max_len + 1, docs)
    lens[rng.random(docs) < 0.2] = 400  # many of one length (one bucket), as pooled SPLARE documents
    ids = [np.sort(rng.choice(size, n, replace=False)).astype(np.int64) for n in lens]
    w = [(rng.integers(1, levels + 1, n) / scale).astype(np.float32) for n in lens]
    return ids, w


def _concat(ids, w):
    bounds = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum([x.size for x in ids], out=bounds[1:])
    return np.concatenate(ids), np.concatenate(w), bounds


def _reference(vec: SparseVector, topk: int, mass: float | None) -> SparseVector:
    if mass is not None:
        vec = vec.mass_prune(mass)
    return vec.topk(topk) if topk > 0 else vec


@pytest.mark.parametrize("topk,mass", [(1, None), (5, None), (200, None), (400, None), (0, 0.3), (0, 0.9),
                                       (0, 1.0), (50, 0.5), (3, 0.95)])
def test_prune_segments_equals_sparse_vector_pruning_one_vector_at_a_time(topk, mass):
    rng = np.random.default_rng(topk * 7 + int((mass or 0) * 100))
    ids, w = _random_block(rng, 300)
    # Ids at the top of the packed key's range, and vectors of one weight (all tied).
    ids[0] = np.array([0, 2**32 - 2, 2**32 - 1], dtype=np.int64)
    w[0] = np.full(3, 0.07, np.float32)
    w[1] = np.full(w[1].size, 0.5, np.float32)
    cat_ids, cat_w, bounds = _concat(ids, w)
    keep = prune_segments(cat_ids, cat_w, bounds, topk=topk, mass=mass)
    assert keep is not None and keep.dtype == bool and keep.size == cat_ids.size
    for j in range(len(ids)):
        a, b = bounds[j], bounds[j + 1]
        ref = _reference(SparseVector(ids[j], w[j]), topk, mass)
        assert cat_ids[a:b][keep[a:b]].tolist() == ref.ids.tolist(), j


def test_prune_segments_buckets_with_padding_and_vectors_left_alone():
    """Lengths that share a bucket but differ (padding), next to a vector too short to prune, whose
    sizes add up to a bucket's rows x width (a shortcut for unpadded blocks must not take it)."""
    rng = np.random.default_rng(12)
    for lens in ([400, 390, 10], [390, 400, 10], [10, 400, 390], [400, 400, 400], [33, 35, 2, 30]):
        ids = [np.sort(rng.choice(131_072, n, replace=False)) for n in lens]
        w = [(rng.integers(1, 6, n) / 10).astype(np.float32) for n in lens]
        cat_ids, cat_w, bounds = _concat(ids, w)
        for topk, mass in ((50, None), (0, 0.5), (20, 0.7)):
            keep = prune_segments(cat_ids, cat_w, bounds, topk=topk, mass=mass)
            for j in range(len(lens)):
                ref = _reference(SparseVector(ids[j], w[j]), topk, mass)
                assert cat_ids[bounds[j]:bounds[j + 1]][keep[bounds[j]:bounds[j + 1]]].tolist() == ref.ids.tolist()


def test_topk_ties_go_to_the_smaller_id_by_brute_force():
    """Independent of SparseVector: a full sort by (weight desc, id asc) per vector."""
    rng = np.random.default_rng(1)
    ids, w = _random_block(rng, 200, levels=4)
    cat_ids, cat_w, bounds = _concat(ids, w)
    for k in (1, 2, 17, 399):
        keep = prune_segments(cat_ids, cat_w, bounds, topk=k)
        for j in range(len(ids)):
            order = sorted(range(ids[j].size), key=lambda i: (-float(w[j][i]), int(ids[j][i])))[:k]
            a, b = bounds[j], bounds[j + 1]
            assert cat_ids[a:b][keep[a:b]].tolist() == sorted(int(ids[j][i]) for i in order)


def test_prune_segments_declines_what_it_does_not_cover():
    ids, w, bounds = np.array([1, 2, 3]), np.array([0.5, 0.0, 1.0], np.float32), np.array([0, 3])
    assert prune_segments(ids, w, bounds, topk=1) is None  # a zero weight
    assert prune_segments(ids, np.array([0.5, np.nan, 1.0], np.float32), bounds, topk=1) is None
    assert prune_segments(ids, np.array([0.5, -1.0, 1.0], np.float32), bounds, topk=1) is None
    assert prune_segments(np.array([1, 2, 2**32]), np.ones(3, np.float32), bounds, topk=1) is None
    assert prune_segments(ids, w, bounds).all()  # nothing asked: everything kept


def _write_both(tmp_path, space, docs, **kw):
    """The same documents written one by one (``write``: the reference) and a block at a time
    (``add_many``), in parts of ``part_size``; returns the two directories."""
    part_size = kw.pop("part_size", 10_000)
    ref, new = tmp_path / "ref", tmp_path / "new"
    with VectorsWriter(ref, space=space, part_size=part_size, **kw) as w:
        for d, ids, wt in docs:
            w.write(d, SparseVector(ids, wt))
    bw = VectorsWriter(new, space=space, part_size=part_size, **kw)
    rng = np.random.default_rng(0)
    for key, start in enumerate(range(0, len(docs), part_size)):
        chunk = docs[start:start + part_size]
        with bw.part(key) as part:
            s = 0
            while s < len(chunk):  # blocks of random sizes, as windows fall
                e = s + int(rng.integers(1, 60))
                i, w_, b = _concat([x[1] for x in chunk[s:e]], [x[2] for x in chunk[s:e]])
                part.add_many([x[0] for x in chunk[s:e]], i, w_, b)
                s = e
    bw.finish()
    return ref, new


def _same_dirs(a, b):
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for n in names:
        assert (a / n).read_bytes() == (b / n).read_bytes(), n
    return names


@pytest.mark.parametrize("topk,mass,scale", [(0, None, 100.0), (40, None, 100.0), (40, None, 1000.0),
                                             (0, 0.8, 100.0), (25, 0.9, 37.5), (7, None, 1.0)])
def test_add_many_writes_the_bytes_of_write_one_document_at_a_time(tmp_path, topk, mass, scale):
    """Float model outputs (some round to 0 at scale 1: the per-document path) and dequantized
    impacts (ties), over several parts: part files and meta.json byte-identical."""
    rng = np.random.default_rng(5)
    space = PrefixedSpace("L", 131_072)
    ids, w = _random_block(rng, 150, max_len=300)
    floats = [rng.uniform(0.004, 5, x.size).astype(np.float32) for x in ids[:75]]
    docs = [(f"d{i}", x, wt) for i, (x, wt) in enumerate(zip(ids, floats + w[75:]))]
    ref, new = _write_both(tmp_path, space, docs, quant_scale=scale, topk=topk, mass=mass, part_size=64)
    assert len(_same_dirs(ref, new)) == 4  # three parts and meta.json


def test_add_many_with_a_vocabulary_space_and_bad_input(tmp_path):
    """Terms that need JSON escaping or are too long for the key table take json.dumps; a bad
    document fails as write() fails it (the per-document path names it)."""
    from pyserini_splare._errors import UsageError

    vocab = ['"', "\\", "ü", "x" * 60, "日本"] + [f"t{i}" for i in range(200)]
    space = VocabSpace(vocab)
    rng = np.random.default_rng(2)
    docs = []
    for i in range(40):
        ids = np.sort(rng.choice(space.size, int(rng.integers(1, 30)), replace=False))
        docs.append((f"d{i}", ids, (rng.integers(1, 9, ids.size) / 10).astype(np.float32)))
    ref, new = _write_both(tmp_path, space, docs, topk=5)
    _same_dirs(ref, new)
    w = VectorsWriter(tmp_path / "bad", space=space)
    with pytest.raises(UsageError, match="'d1': weight is NaN"), w.part(0) as part:
        part.add_many(["d0", "d1"], np.array([1, 2, 1]), np.array([0.5, 1.0, np.nan]), np.array([0, 2, 3]))


def _line(space, docid, ids, q):
    rec = {"id": docid, "contents": "", "vector": dict(zip(space.terms(ids), q.tolist()))}
    return (json.dumps(rec, ensure_ascii=False) + "\n").encode()


def test_parse_block_reads_what_json_reads_or_declines():
    """Random byte edits of the writer's lines: parse_block gives exactly what json.loads gives for
    a block the writer could have written, and None for anything else (never a wrong vector)."""
    space = PrefixedSpace("L", 131_072)
    fmt = LineFormatter(space)
    rng = np.random.default_rng(9)
    lines = []
    for i in range(12):
        ids = np.sort(rng.choice(space.size, int(rng.integers(1, 40)), replace=False))
        ids[0] = rng.choice([0, ids[0]])
        q = rng.integers(1, 65_505, ids.size)
        lines.append(_line(space, f"d{i}", ids, q))
    docids, ids, q, bounds = fmt.parse_block(lines)
    assert fmt.lines(docids, ids, q, bounds) == b"".join(lines)  # the formatter writes them back
    alphabet = b'0123456789"L: ,{}\\x\n'
    declined = 0
    for t in range(3000):
        block = list(lines[:3])
        j = int(rng.integers(0, 3))
        raw = bytearray(block[j])
        for _ in range(int(rng.integers(1, 3))):
            pos = int(rng.integers(0, len(raw)))
            op = rng.integers(0, 3)
            if op == 0:
                raw[pos] = alphabet[rng.integers(0, len(alphabet))]
            elif op == 1:
                del raw[pos]
            else:
                raw.insert(pos, alphabet[rng.integers(0, len(alphabet))])
        block[j] = bytes(raw)
        got = fmt.parse_block(block)
        if got is None:
            declined += 1
            continue
        # Accepted: every line must be valid JSON, its vector in the space, written as the writer writes.
        for line, (d, a, b) in zip(block, zip(got[0], got[3][:-1], got[3][1:])):
            ref = json.loads(line)
            assert ref["id"] == d and ref["contents"] == ""
            assert list(ref["vector"]) == space.terms(got[1][a:b])
            assert list(ref["vector"].values()) == got[2][a:b].tolist()
            assert _line(space, d, got[1][a:b], got[2][a:b]) == line
            assert (np.diff(got[1][a:b]) > 0).all()
    assert 0 < declined < 3000


def test_prune_from_cli_equals_the_per_document_reference(tmp_path, monkeypatch):
    """``encode --prune-from`` (batched) against the reference built here one document at a time:
    iter_arrays, dequantized (q / scale) -> VectorsWriter.write with the same pruning. Part files identical, and
    meta.json too once the paths it records are set aside; shards and small parts included."""
    from pyserini_splare.encode.__main__ import main

    rng = np.random.default_rng(4)
    space = PrefixedSpace("L", 131_072)
    ids, w = _random_block(rng, 700, max_len=500)
    src, src_fine = tmp_path / "src", tmp_path / "src_fine"
    with VectorsWriter(src, space=space, part_size=300) as wr:
        for i, (x, wt) in enumerate(zip(ids, w)):
            wr.write(f"doc{i}", SparseVector(x, wt))
    with VectorsWriter(src_fine, space=space, quant_scale=1000.0) as wr:  # float weights, another scale
        for i, x in enumerate(ids[:200]):
            wr.write(f"doc{i}", SparseVector(x, rng.uniform(0.001, 5, x.size)))
    for source, args, topk, mass, shard in [
            (src, ["--topk", "37"], 37, None, (0, 1)), (src, ["--mass", "0.6"], 0, 0.6, (0, 1)),
            (src, ["--topk", "20", "--mass", "0.9", "--shard-id", "1", "--shard-num", "3"], 20, 0.9, (1, 3)),
            (src_fine, ["--topk", "30", "--quant-scale", "1000"], 30, None, (0, 1))]:
        scale = open_collection(source).quant_scale
        out = tmp_path / f"out{topk}_{mass}"
        one_by_one = []
        with monkeypatch.context() as m:  # the batched path writes every block (no per-document fallback)
            m.setattr(_SparsePart, "add", lambda self, *a: one_by_one.append(a))
            assert main(["--prune-from", str(source), *args, "--part-size", "128", "--batch-size", "3",
                         "--output", str(out)]) == 0
        assert not one_by_one
        ref = tmp_path / f"ref{topk}_{mass}"
        with VectorsWriter(ref, space=space, part_size=128, topk=topk, mass=mass, quant_scale=scale,
                           pooling={"topk": topk, "mass": mass}) as wr:
            for j, (d, x, q, _) in enumerate(open_collection(source).iter_arrays()):
                if j % shard[1] == shard[0]:
                    wr.write(d, SparseVector(x, q / scale))
        parts = sorted(p.name for p in out.glob("part-*"))
        assert parts == sorted(p.name for p in ref.glob("part-*")) and len(parts) >= 2
        for name in parts:
            assert (out / name).read_bytes() == (ref / name).read_bytes(), name
        a, b = json.loads((out / "meta.json").read_text()), json.loads((ref / "meta.json").read_text())
        assert a["stats"].pop("shard") == {"id": shard[0], "num": shard[1]} and a["stats"].pop("source")
        assert a["pooling"].pop("method") == "max_log1p_relu"
        assert a == b
