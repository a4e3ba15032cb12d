"""Lucene searchers (Anserini through pyjnius, in-process): impact (learned sparse) and BM25."""

from __future__ import annotations

import re
from typing import Any, Mapping

from .._cli import UsageError
from ._base import Hit, Searcher, SparseSearcher, sort_hits, check_k_threads


def _java_error(e: Exception) -> UsageError:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return UsageError(f"Anserini search failed: {msg}")


# Lucene's classic query syntax: these characters are escaped with a backslash inside a term, and
# the operator words lose their meaning when their first letter is escaped.
_QP_SPECIAL = re.compile(r'([\\+\-!():^\[\]"{}~*?|&/])')
_QP_WORDS = frozenset({"AND", "OR", "NOT", "TO"})
# One hit of Arrays.toString(FieldDoc[]) for the sort (score, id): the id's BytesRef prints as hex bytes.
_HIT = re.compile(r"doc=\d+ score=(\S+) shardIndex=-?\d+ fields=\[[^,\]]*, \[([0-9a-f ]*)\]\]")


def query_string(query: Mapping[str, int]) -> str:
    """``{term: int weight}`` as Lucene classic query syntax ``t1^w1 t2^w2 ...`` (terms escaped): parsed
    on field ``contents`` with a whitespace analyzer this is the query Anserini's
    ``BagOfWordsQueryGenerator`` builds (one SHOULD ``BoostQuery(TermQuery(t), w)`` per term)."""
    out = []
    for t, w in query.items():
        e = _QP_SPECIAL.sub(r"\\\1", t)
        if e in _QP_WORDS:
            e = "\\" + e
        out.append(f"{e}^{int(w)}")
    return " ".join(out)


def parse_hits(text: str, k: int) -> list[Hit]:
    """Hits from ``Arrays.toString`` of a ``TopFieldDocs.scoreDocs`` sorted by (score, id).

    Scores are float32 sums of integer products, exact below 2**24: rounded to the integer they are."""
    return [(bytes.fromhex(h).decode("utf-8"), float(round(float(sc)))) for sc, h in _HIT.findall(text)][:k]


class ImpactSearcher(SparseSearcher):
    """Lucene impact search through pyjnius, with every hit of a query crossing JNI in one string.

    What it runs is what Anserini's ``SimpleImpactSearcher`` runs -- the same query (one boosted
    term query per query term, under ``ImpactSimilarity``), the same collector (top k sorted by score
    descending, then by the ``id`` doc-values field ascending, so the top k is exact where scores tie
    at the cut-off) -- without its per-hit costs: Anserini loads each hit's stored document, and
    reading a hit's fields from Python costs one JNI call per attribute (at 1,000 hits that was
    more than Lucene's search itself). Here a ``MethodHandle`` composed once (``TopDocs.scoreDocs``
    -> ``Arrays.toString``) returns all hits as one string, parsed in Python; the external id comes
    from the sort key in each hit (its bytes, printed as hex), so no stored field is read. Query and
    document weights are integers, so scores are exact dot products (below 2**24, Lucene's float32
    limit for integer sums); Anserini's ``ScoreTiesAdjusterReranker`` epsilons are not applied.

    Pyserini's ``LuceneImpactSearcher`` drops query terms whose idf is <= ``min_idf`` (default 0:
    every term that occurs in all documents); every query term counts here.

    Interruptible: with one thread the queries run one by one in the calling thread (each JNI call
    lasts milliseconds, so Ctrl-C is seen between two); with several, worker threads search (pyjnius
    releases the GIL during Java calls) while the calling thread waits in short timeouts, and on
    Ctrl-C tells the workers to stop after their current query.
    """

    backend = "lucene"

    def __init__(self, index_dir, meta=None):
        super().__init__(index_dir, meta)
        from .._java import jclass

        try:
            d = jclass("org.apache.lucene.store.FSDirectory").open(jclass("java.io.File")(str(index_dir)).toPath())
            self._reader = jclass("org.apache.lucene.index.DirectoryReader").open(d)
            IndexSearcher = jclass("org.apache.lucene.search.IndexSearcher")
            # IndexSearcher(IndexReader) vs (IndexReaderContext): pyjnius needs the signature.
            self._searcher = IndexSearcher(self._reader, signature="(Lorg/apache/lucene/index/IndexReader;)V")
        except Exception as e:
            raise _java_error(e) from None
        self._searcher.setSimilarity(jclass("io.anserini.search.similarity.ImpactSimilarity")())
        # Unpooled learned-sparse queries can have thousands of terms (Lucene's default limit: 1024).
        if IndexSearcher.getMaxClauseCount() < 1 << 16:
            IndexSearcher.setMaxClauseCount(1 << 16)
        SortField = jclass("org.apache.lucene.search.SortField")
        self._sort = jclass("org.apache.lucene.search.Sort")(
            SortField.FIELD_SCORE, SortField("id", jclass("org.apache.lucene.search.SortField$Type").STRING_VAL))
        Class, MT = jclass("java.lang.Class"), jclass("java.lang.invoke.MethodType")
        MH = jclass("java.lang.invoke.MethodHandles")
        lookup = MH.publicLookup()
        hits_t = Class.forName("[Lorg.apache.lucene.search.ScoreDoc;")
        getter = lookup.findGetter(Class.forName("org.apache.lucene.search.TopDocs"), "scoreDocs", hits_t)
        string_t = Class.forName("java.lang.String")
        to_string = lookup.findStatic(Class.forName("java.util.Arrays"), "toString",
                                      MT.methodType(string_t, Class.forName("[Ljava.lang.Object;")))
        # TopDocs -> String in one Java call: pyjnius would turn the ScoreDoc[] into a Python list of
        # proxies (one JNI round trip per hit) if it ever came back to Python.
        self._hits_as_string = MH.filterReturnValue(getter, to_string.asType(MT.methodType(string_t, hits_t)))
        self._jclass = jclass
        self.num_docs = int(self._reader.numDocs())

    def _session(self):
        """Per-thread objects (QueryParser is not thread-safe)."""
        jclass = self._jclass
        qp = jclass("org.apache.lucene.queryparser.classic.QueryParser")(
            "contents", jclass("org.apache.lucene.analysis.core.WhitespaceAnalyzer")())
        args = jclass("java.util.ArrayList")()
        args.add(None)
        return qp, args

    def _search_one(self, session, query: Mapping[str, int], k: int) -> list[Hit]:
        qp, args = session
        try:
            top = self._searcher.search(qp.parse(query_string(query)), k, self._sort, True)
            args.set(0, top)
            text = self._hits_as_string.invokeWithArguments(args, signature="(Ljava/util/List;)Ljava/lang/Object;")
        except Exception as e:
            if type(e).__name__ == "JavaException":
                raise _java_error(e) from None
            raise
        return parse_hits(text, k)

    def _raw_batch(self, queries: Mapping[str, Mapping[str, int]], k: int, threads: int) -> dict[str, list[Hit]]:
        if self._searcher is None:
            raise UsageError("search on a closed searcher")
        if threads == 1 or len(queries) == 1:
            session = self._session()
            return {qid: self._search_one(session, q, k) for qid, q in queries.items()}
        return self._threaded(queries, k, min(threads, len(queries)))

    def _threaded(self, queries, k: int, threads: int) -> dict[str, list[Hit]]:
        import threading

        items = list(queries.items())
        out: dict[str, list[Hit]] = {}
        errors: list[BaseException] = []
        stop = threading.Event()
        next_i = iter(range(len(items)))
        lock = threading.Lock()

        def work():
            from jnius import detach

            try:
                session = self._session()
                while not stop.is_set():
                    with lock:
                        i = next(next_i, None)
                    if i is None:
                        return
                    qid, q = items[i]
                    out[qid] = self._search_one(session, q, k)
            except BaseException as e:  # reported by the calling thread
                errors.append(e)
                stop.set()
            finally:
                detach()  # a thread that attached to the JVM must detach before it ends

        workers = [threading.Thread(target=work, daemon=True, name=f"lucene-search-{i}") for i in range(threads)]
        for w in workers:
            w.start()
        try:
            for w in workers:
                while w.is_alive():
                    w.join(0.05)  # short waits: the main thread stays responsive to signals
        except BaseException:
            stop.set()
            for w in workers:
                w.join(2.0)
            raise
        if errors:
            raise errors[0]
        return {qid: out[qid] for qid, _ in items}

    def batch_search(self, queries: Mapping[str, Mapping[str, float]], k: int = 1000, threads: int = 1) -> dict[str, list[Hit]]:
        check_k_threads(k, threads)
        prepared = {qid: self.prepare(qid, v) for qid, v in queries.items()}
        return self._raw_batch(prepared, k, threads)

    def close(self):
        if getattr(self, "_reader", None) is not None:
            self._reader.close()
            self._reader = None
            self._searcher = None


class Bm25Searcher(Searcher):
    """BM25 with Anserini's defaults (k1=0.9, b=0.4) through Pyserini's ``LuceneSearcher``."""

    backend = "bm25"

    def __init__(self, index_dir, meta=None, k1: float = 0.9, b: float = 0.4):
        super().__init__(index_dir, meta)
        from .._java import start_jvm

        start_jvm()
        from pyserini.search.lucene import LuceneSearcher

        try:
            self._searcher = LuceneSearcher(str(index_dir))
        except Exception as e:
            raise _java_error(e) from None
        lang = self.meta.get("language") or "en"
        if lang != "en":
            self._searcher.set_language(lang)
        self._searcher.set_bm25(k1, b)
        self.num_docs = int(self._searcher.num_docs)

    def batch_search(self, queries: Mapping[str, Any], k: int = 1000, threads: int = 1) -> dict[str, list[Hit]]:
        check_k_threads(k, threads)
        for qid, q in queries.items():
            if not isinstance(q, str):
                raise UsageError(f"query {qid!r}: a BM25 index is searched with text, got {type(q).__name__}")
        qids = list(queries)
        try:
            res = self._searcher.batch_search([queries[q] for q in qids], qids, k=k, threads=threads)
        except Exception as e:
            raise _java_error(e) from None
        return {qid: sort_hits(((h.docid, h.score) for h in res.get(qid, [])), k) for qid in qids}

    def close(self):
        if getattr(self, "_searcher", None) is not None:
            self._searcher.close()
            self._searcher = None
