"""Sparse vectors, feature spaces, quantization and the vectors directory's streaming writer (no JVM, no torch).

formats/sparse.py, formats/spaces.py, formats/quant.py, formats/jsonvector.py, formats/vectors_writer.py;
keyed parts, resume, shards and foreign folders are in test_vectors_dir.py.
"""

import json
import math

import numpy as np
import pytest

from pyserini_splare._errors import UsageError
from pyserini_splare.formats.quant import QuantStats, dequantize, quantize
from pyserini_splare.formats.query_vectors import read_query_vectors
from pyserini_splare.formats.spaces import CompositeSpace, FeatureSpace, PrefixedSpace, VocabSpace
from pyserini_splare.formats.sparse import SparseVector
from pyserini_splare.formats.vectors_meta import read_meta
from pyserini_splare.formats.vectors_reader import iter_vectors
from pyserini_splare.formats.vectors_writer import VectorsWriter, copy_vectors_dir


def test_sparse_vector_sorts_and_rejects_duplicates():
    v = SparseVector([5, 1, 3], [0.5, 0.1, 0.3])
    assert v.ids.tolist() == [1, 3, 5] and v.weights.tolist() == pytest.approx([0.1, 0.3, 0.5])
    with pytest.raises(ValueError):
        SparseVector([1, 1], [0.2, 0.3])


def test_topk_and_mass_prune_by_hand():
    v = SparseVector([0, 1, 2, 3, 4], [0.1, 0.9, 0.5, 0.5, 0.2])
    # k=3: 0.9 (id 1), then the tie 0.5/0.5 (ids 2, 3) -> ids 1, 2, 3
    assert v.topk(3).ids.tolist() == [1, 2, 3]
    # k=2: 0.9, and of the tied 0.5s the smaller id wins
    assert v.topk(2).ids.tolist() == [1, 2]
    assert v.topk(0).nnz == 5
    # total 2.2; 70% = 1.54 -> 0.9 + 0.5 = 1.4 < 1.54, + 0.5 = 1.9 >= 1.54 -> 3 weights
    assert v.mass_prune(0.7).ids.tolist() == [1, 2, 3]


def test_dot_equals_dense_dot():
    rng = np.random.default_rng(0)
    a = SparseVector.from_dense(np.where(rng.random(50) < 0.3, rng.random(50), 0))
    b = SparseVector.from_dense(np.where(rng.random(50) < 0.3, rng.random(50), 0))
    assert a.dot(b) == pytest.approx(float(a.to_dense(50) @ b.to_dense(50)), rel=1e-6)


@pytest.mark.parametrize("space", [
    PrefixedSpace("L", 131072),
    VocabSpace(["[PAD]", "hello", "##ing", "a b", "", "w5", "w4"]),
    CompositeSpace([PrefixedSpace("e", 10), PrefixedSpace("x", 20)]),
])
def test_feature_space_round_trip_and_meta(space):
    ids = range(space.size) if space.size < 1000 else [0, 1, 131071, 4242]
    terms = [space.term(i) for i in ids]
    assert len(set(terms)) == len(terms)
    assert all(t and " " not in t for t in terms)
    assert [space.id(t) for t in terms] == list(ids)
    assert space.ids(terms).tolist() == list(ids)  # the cached table agrees with id()
    again = FeatureSpace.from_meta(json.loads(json.dumps(space.to_meta())))
    assert again == space and again.fingerprint() == space.fingerprint()


def test_vocab_space_unsafe_tokens_get_ids_without_collision():
    s = VocabSpace(["ok", "a b", "w1", "\t"])
    # "a b" (space) -> w1; the real token "w1" would collide, so it becomes w2; "\t" -> w3
    assert [s.term(i) for i in range(4)] == ["ok", "w1", "w2", "w3"]


def test_prefixed_space_rejects_foreign_terms():
    s = PrefixedSpace("L", 10)
    for bad in ["t3", "L10", "L03", "L", "Lx"]:
        with pytest.raises(KeyError):
            s.id(bad)


def test_quantize_formula_and_stats():
    w = np.array([0.004, 0.005, 0.006, 1.234, 2.5, 0.015])
    q = quantize(w, 100)
    # round half to even: 0.5 -> 0, 1.5 -> 2 (0.015*100 = 1.5 in binary is just under/over; check by formula)
    assert q.tolist() == [int(np.rint(x * 100)) for x in w]
    stats = QuantStats(100.0)
    stats.update(w, q)
    kept = q > 0
    assert stats.n_zeroed == int((~kept).sum())
    expect = max(abs(qq / 100 - ww) / ww for ww, qq in zip(w, q) if qq > 0)
    assert stats.max_rel_error == pytest.approx(expect)
    with pytest.raises(ValueError):
        quantize(w, 0)
    with pytest.raises(ValueError):
        quantize(w, math.inf)
    # dequantize is the inverse on the grid: quantizing q / s at s gives q back exactly
    q = np.arange(0, 70_000, 7)
    for s in (100.0, 256 / 5, 3.0, 1.0):
        assert quantize(dequantize(q[q <= 65_504], s), s).tolist() == q[q <= 65_504].tolist()


def _write(tmp_path, docs, **kw):
    space = PrefixedSpace("L", 100)
    with VectorsWriter(tmp_path / "vec", space=space, quant_scale=100, **kw) as w:
        for docid, vec in docs:
            w.write(docid, vec)
    return w


def test_writer_round_trip_shards_and_meta(tmp_path):
    rng = np.random.default_rng(1)
    docs = [(f"d{i}", SparseVector.from_dense(np.where(rng.random(100) < 0.2, rng.random(100) * 3, 0)))
            for i in range(25)]
    w = _write(tmp_path, docs, part_size=10)
    out = tmp_path / "vec"
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "part-00000.jsonl", "part-00001.jsonl", "part-00002.jsonl"]
    assert not (tmp_path / "vec.partial").exists()
    read = dict(iter_vectors(out))
    assert list(read) == [d for d, _ in docs]
    for docid, vec in docs:
        expect = {f"L{i}": int(np.rint(x * 100)) for i, x in zip(vec.ids, vec.weights) if np.rint(x * 100) > 0}
        assert read[docid] == expect
    meta = read_meta(out)
    assert meta.quant_scale == 100 and meta.space == PrefixedSpace("L", 100)
    assert meta.stats["documents"] == 25
    assert meta.stats["postings"] == sum(len(v) for v in read.values())
    assert meta.stats["quantization"]["zeroed"] == w.stats.n_zeroed


@pytest.mark.parametrize("vec, msg", [
    (SparseVector([1], [float("nan")]), "NaN"),
    (SparseVector([1], [float("inf")]), "infinite"),
    (SparseVector([1], [-0.5]), "negative"),
])
def test_writer_rejects_bad_vectors_and_leaves_nothing(tmp_path, vec, msg):
    with pytest.raises(UsageError, match=msg):
        _write(tmp_path, [("a", SparseVector([1], [1.0])), ("b", vec)])
    assert not (tmp_path / "vec").exists() and not (tmp_path / "vec.partial").exists()


def test_writer_rejects_duplicate_ids_across_shards(tmp_path):
    v = SparseVector([1], [1.0])
    with pytest.raises(UsageError, match="duplicate document id 'x'"):
        _write(tmp_path, [("x", v), ("y", v), ("x", v)], part_size=1)
    assert not (tmp_path / "vec").exists()


def test_writer_rejects_bad_id(tmp_path):
    with pytest.raises(UsageError, match="document id"):
        _write(tmp_path, [("has space", SparseVector([1], [1.0]))])


def test_copy_vectors_dir_prunes_without_reencoding(tmp_path):
    docs = [("a", SparseVector([1, 2, 3], [0.5, 2.0, 1.0]))]
    _write(tmp_path, docs)
    copy_vectors_dir(tmp_path / "vec", tmp_path / "top2", lambda v: v.topk(2))
    assert dict(iter_vectors(tmp_path / "top2")) == {"a": {"L2": 200, "L3": 100}}


@pytest.mark.parametrize("line, msg", [
    ('{"id": "q1", "vector": {"L1": 1.0}', "malformed JSON"),
    ('{"vector": {"L1": 1.0}}', "missing 'id'"),
    ('{"id": "q1"}', "missing 'vector'"),
    ('{"id": "q1", "vector": {}}', "empty vector"),
    ('{"id": "q1", "vector": {"L1": NaN}}', "must be finite"),
    ('{"id": "q1", "vector": {"L1": -1}}', "negative"),
    ('{"id": "q1", "vector": {"L1": Infinity}}', "must be finite"),
    ('{"id": "q1", "vector": {"L1": "x"}}', "not a number"),
])
def test_query_vectors_errors_name_file_and_line(tmp_path, line, msg):
    p = tmp_path / "q.jsonl"
    p.write_text('{"id": "q0", "vector": {"L1": 1.0}}\n' + line + "\n")
    with pytest.raises(UsageError, match=msg) as e:
        read_query_vectors(p)
    assert f"{p}:2" in str(e.value)


def test_query_vectors_duplicate_and_utf8(tmp_path):
    p = tmp_path / "q.jsonl"
    p.write_text('{"id": "q0", "vector": {"L1": 1.0}}\n{"id": "q0", "vector": {"L2": 1.0}}\n')
    with pytest.raises(UsageError, match="duplicate id 'q0'"):
        read_query_vectors(p)
    p.write_bytes(b'{"id": "q0", "vector": {"L1": 1.0}}\n\xff\xfe\n')
    with pytest.raises(UsageError, match="not valid UTF-8"):
        read_query_vectors(p)


def test_document_whose_weights_all_round_to_zero_is_counted_not_written(tmp_path):
    w = _write(tmp_path, [("a", SparseVector([1], [1.0])), ("tiny", SparseVector([2, 3], [0.001, 0.004])),
                          ("empty", SparseVector([], []))])
    assert dict(iter_vectors(tmp_path / "vec")) == {"a": {"L1": 100}}
    stats = read_meta(tmp_path / "vec").stats
    assert stats["documents"] == 1 and stats["empty_after_quantization"] == 2
    assert w.stats.n_zeroed == 2


def test_vector_fast_check_agrees_with_term_by_term_rules():
    """check_weights' whole-vector fast path accepts exactly what the per-term rules accept."""
    import math
    import random

    from pyserini_splare.formats.jsonvector import _vector_is_clean
    from pyserini_splare.formats.quant import MAX_IMPACT
    from pyserini_splare.formats.jsonvector import check_vector as check_weights

    def reference(v):  # the rules, written out one term at a time
        for t, w in v.items():
            if not t or not t.isprintable() or any(c.isspace() for c in t):
                return False
            if type(w) not in (int, float):
                return False
            try:
                if not math.isfinite(w) or w < 0:
                    return False
            except OverflowError:
                return False
        return True

    rng = random.Random(0)
    bad_terms = ["", "a b", "x\t", "\x00y", "z\u3000", "\n", "ok\x7f"]
    bad_weights = [-1, -0.5, float("nan"), float("inf"), True, False, "3", None, [1], 10 ** 400, MAX_IMPACT + 1, 70000.0]
    for _ in range(2000):
        v = {f"t{rng.randrange(10 ** 6)}é": rng.choice([rng.randrange(0, 500), rng.random() * 5, 0, 0.0])
             for _ in range(rng.randrange(1, 30))}
        r = rng.random()
        if r < 0.3:
            v[rng.choice(bad_terms)] = 1
        elif r < 0.6:
            v[rng.choice(list(v))] = rng.choice(bad_weights)
        assert _vector_is_clean(v) == reference(v), v
        if not reference(v):
            with pytest.raises(UsageError):
                check_weights(v, "f:1")
        else:
            assert check_weights(v, "f:1") is v
        # stored impacts: additionally integers (not bool) no larger than MAX_IMPACT
        ref_int = reference(v) and all(type(w) is int and w <= MAX_IMPACT for w in v.values())
        assert _vector_is_clean(v, integer=True) == ref_int, v
        if ref_int:
            assert check_weights(v, "f:1", integer=True) is v
        else:
            with pytest.raises(UsageError):
                check_weights(v, "f:1", integer=True)


def test_copy_vectors_dir_requantizes(tmp_path):
    """quant_scale re-quantizes: round(stored * new / old), the documented double rounding."""
    space = PrefixedSpace("t", 100)
    rng = np.random.default_rng(3)
    with VectorsWriter(tmp_path / "v100", space=space, quant_scale=100.0) as w:
        for i in range(50):
            ids = rng.choice(100, 12, replace=False)
            w.write(f"d{i}", SparseVector(ids, rng.random(12) * 3 + 0.01))
    copy_vectors_dir(tmp_path / "v100", tmp_path / "v10", quant_scale=10)
    assert read_meta(tmp_path / "v10").quant_scale == 10.0
    src = dict(iter_vectors(tmp_path / "v100"))
    got = dict(iter_vectors(tmp_path / "v10"))
    n_half = 0
    for d, vec in src.items():
        g = got.get(d, {})
        for t, q in vec.items():
            exact = q * 10 / 100  # the new integer before rounding, in exact arithmetic (q * 10 is an int)
            options = {int(np.floor(exact)), int(np.ceil(exact))} if (q * 10) % 100 == 50 else {int(np.rint(exact))}
            n_half += len(options) > 1
            assert g.get(t, 0) in options, (d, t, q)  # 0 = dropped
        assert set(g) <= set(vec)
    assert len(got) == len(src) and n_half > 0  # exact halves occurred and either rounding was accepted


def test_line_formatter_writes_what_json_dumps_writes():
    """The writer's fast line formatting equals json.dumps(record, ensure_ascii=False), the format every
    vectors directory has had, including terms and ids that need JSON escaping."""
    from pyserini_splare.formats.jsonvector import LineFormatter

    rng = np.random.default_rng(7)
    vocab = ["a", '"', "\\", "ü", 'x"y', "b", "##ing", "é:", ',"', '":', "日本", "\\n", "a,b"] + [f"t{i}" for i in range(50)]
    space = VocabSpace(vocab)
    fmt = LineFormatter(space)
    for _ in range(300):
        ids = np.sort(rng.choice(space.size, rng.integers(1, 20), replace=False))
        q = rng.integers(1, 65_504, ids.size)
        docid = rng.choice(["d1", 'd"2', "d\\3", "dü4", "5"])
        contents = rng.choice(["", 'some "text"\n', "plain"])
        rec = {"id": docid, "contents": contents, "vector": dict(zip(space.terms(ids), q.tolist()))}
        assert fmt.line(docid, ids, q, contents) == (json.dumps(rec, ensure_ascii=False) + "\n").encode()


def test_fast_line_parse_agrees_with_orjson_and_refuses_every_other_line():
    """The numpy parse of the writer's lines (LineFormatter.parse / parse_many) gives what json.loads
    gives, and returns None (the reference path then decides) for any line the writer would not write."""
    from pyserini_splare.formats.jsonvector import LineFormatter

    rng = np.random.default_rng(3)
    space = PrefixedSpace("L", 131_072)
    fmt = LineFormatter(space)
    lines = []
    for i in range(50):
        ids = np.sort(rng.choice(space.size, rng.integers(1, 300), replace=False))
        ids[0] = rng.choice([0, ids[0]])
        q = rng.integers(1, 65_505, ids.size)
        q[-1] = rng.choice([1, 9, 10, 65_504, q[-1]])
        rec = {"id": f"d{i}", "contents": "", "vector": dict(zip(space.terms(ids), q.tolist()))}
        lines.append((json.dumps(rec, ensure_ascii=False) + "\n").encode())
    many = fmt.parse_many(lines)
    assert many is not None
    for raw, one, batch in zip(lines, map(fmt.parse, lines), many):
        ref = json.loads(raw)
        for got in (one, batch):
            assert got[0] == ref["id"]
            assert space.terms(got[1]) == list(ref["vector"]) and got[2].tolist() == list(ref["vector"].values())
    good = lines[0]
    bad = [good.replace(b'": ', b'":', 1),                      # compact JSON (another tool's)
           good.replace(b'"L', b'"L0', 1),                       # a leading zero: not the space's term
           good.replace(b'"L', b'"M', 1),                        # another prefix
           good[:-1],                                            # no newline
           good.replace(b'"contents": ""', b'"contents": "x"'),  # contents
           good.replace(b'"id": "d0"', b'"id": "d\\u0030"'),     # an escaped id
           good.replace(b'"id": "d0"', b'"id": "d 0"'),          # whitespace in the id
           good.replace(b"}}\n", b", \"L131072\": 5}}\n"),      # outside the space
           good.replace(b"}}\n", b", \"L1\": 5}}\n"),           # ids not increasing (a duplicate, possibly)
           good.replace(b"}}\n", b", \"L131071\": 0}}\n"),      # a zero impact (the writer drops them)
           good.replace(b"}}\n", b", \"L131071\": 65505}}\n"),  # beyond MAX_IMPACT
           good.replace(b"}}\n", b", \"L131071\": 1.0}}\n"),    # a float
           b"\n", b'{"id": "d0", "contents": "", "vector": {}}\n']
    for b in bad:
        assert b != good and fmt.parse(b) is None, b[:80]
        assert fmt.parse_many(lines[1:4] + [b]) is None, b[:80]
    # Two lines whose bytes would format as one batch if the split between them were ignored.
    a, b = lines[1], lines[2]
    assert fmt.parse_many([a[:-3] + b", " + b[b.index(b'"vector": {') + 11:], b]) is None


def test_collection_reads_other_spacing_through_the_reference_path(tmp_path):
    """A part rewritten with compact separators (as orjson or Anserini tools write) reads, validates and
    fails exactly as through orjson + check_vector; the writer's own lines are read by the fast path."""
    from pyserini_splare.formats.vectors_reader import open_collection

    space = PrefixedSpace("L", 1000)
    rng = np.random.default_rng(5)
    docs = [(f"d{i}", SparseVector(np.sort(rng.choice(1000, 30, replace=False)), rng.uniform(0.1, 5, 30)))
            for i in range(40)]
    out = tmp_path / "v"
    with VectorsWriter(out, space=space) as w:
        for d, v in docs:
            w.write(d, v)
    part = out / "part-00000.jsonl"
    lines = part.read_bytes().splitlines(keepends=True)
    compact = [json.dumps(json.loads(x), separators=(",", ":")).encode() + b"\n" for x in lines[::2]]
    part.write_bytes(b"".join(c + o for c, o in zip(compact, lines[1::2])))
    coll = open_collection(out)
    got = {d: (ids.tolist(), q.tolist()) for d, ids, q, _ in coll.iter_arrays()}
    ref = {d: ([space.id(t) for t in vec], list(vec.values())) for d, vec in iter_vectors(out)}
    assert got == ref and len(got) == 40
    assert coll.validate() == (40, 40 * 30 - ref_zeroed(ref, 30), len({i for ids, _ in got.values() for i in ids}))
    part.write_bytes(part.read_bytes().replace(b'"L', b'"X', 1))
    with pytest.raises(UsageError, match=r"part-00000.jsonl:1: .*'X"):
        open_collection(out).validate()


def ref_zeroed(ref, n):
    return sum(n - len(ids) for ids, _ in ref.values())


def test_topk_equals_a_full_sort_with_ties_to_the_smaller_id():
    """topk's partition on one packed key keeps what sorting by (weight desc, id asc) keeps, with many
    ties (dequantized weights), -0.0 and negative weights (the lexsort path)."""
    rng = np.random.default_rng(11)
    for t in range(500):
        n = int(rng.integers(1, 300))
        ids = np.sort(rng.choice(131_072, n, replace=False))
        w = (rng.integers(-3 if t % 7 == 0 else 0, 40, n) / rng.choice([1, 7, 100])).astype(np.float32)
        if t % 5 == 0:
            w[rng.integers(0, n)] = -0.0
        v = SparseVector(ids, w)
        k = int(rng.integers(1, n + 1))
        ranked = sorted(range(n), key=lambda i: (-float(w[i]), int(ids[i])))[:k]
        assert v.topk(k).ids.tolist() == sorted(int(ids[i]) for i in ranked)
