"""Lucene searchers (Anserini through pyjnius, in-process): impact (learned sparse) and BM25."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

from .._errors import UsageError
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


_SCORE_DOC = re.compile(r"doc=(\d+) score=(\S+)")


def parse_hits(text: str, k: int) -> list[Hit]:
    """Hits from ``Arrays.toString`` of a ``TopFieldDocs.scoreDocs`` sorted by (score, id).

    Scores are float32 sums of integer products, exact below 2**24: rounded to the integer they are."""
    return [(bytes.fromhex(h).decode("utf-8"), float(round(float(sc)))) for sc, h in _HIT.findall(text)][:k]


class ImpactSearcher(SparseSearcher):
    """Lucene impact search through pyjnius: one JNI call per query returns all its hits as text.

    What it runs is what Anserini's ``SimpleImpactSearcher`` runs -- the same query (one SHOULD
    ``BoostQuery(TermQuery(t), w)`` per query term, parsed from ``t1^w1 t2^w2 ...``, under
    ``ImpactSimilarity``) -- without its per-hit costs: Anserini loads each hit's stored document,
    and reading a hit's fields from Python costs one JNI call per attribute (at 1,000 hits that was
    more than Lucene's search itself). Here one ``MethodHandle`` composed at open does parse ->
    search -> ``Arrays.toString(topDocs.scoreDocs)`` in Java and returns one string per query.

    Top k and ties: with the builder's docid table (``docids.npy``, ids in Lucene's order), Lucene's
    own top k+1 by score (block-max skipping) is taken and the ids looked up in Python; the top k is
    exact unless the k-th and (k+1)-th scores tie, and then (and for an index without the table) the
    query is searched again with Anserini's collector, sorted by score then by the ``id`` doc values,
    whose hits carry their id bytes in the text. Hits come back ordered (score desc, docid asc).
    Scores are float32 sums of integer products, exact below 2**24, returned as the integers they
    are (Anserini's ``ScoreTiesAdjusterReranker`` epsilons are not applied).

    Pyserini's ``LuceneImpactSearcher`` drops query terms whose idf is <= ``min_idf`` (default 0:
    every term that occurs in all documents); every query term counts here.

    Threads and Ctrl-C: with one thread the queries run one by one in the calling thread (each is one
    short JNI call, so Ctrl-C is seen between two); with several, worker threads search (pyjnius
    releases the GIL during Java calls) while the calling thread waits in 50 ms joins, and on Ctrl-C
    tells the workers to stop after their current query. Worker threads call only the one shared
    handle and static methods (see :meth:`_compose_search` for why). Two searchers should not be used
    from two threads at once, for the same reason.
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
        self._search_fn = self._compose_search(jclass)
        self._jclass = jclass
        self.num_docs = int(self._reader.numDocs())
        self._docids = self._load_docid_table()

    def _load_docid_table(self):
        """The builder's table of ids in Lucene docid order, or None (an index built before it existed:
        then every search uses the id-sorted collector)."""
        import numpy as np

        from ..index.lucene import DOCID_TABLE

        path = Path(self.index_dir) / DOCID_TABLE
        if not path.is_file():
            return None
        try:
            ids = np.load(path, allow_pickle=False)
        except ValueError as e:
            raise UsageError(f"{path}: unreadable docid table ({e})") from None
        if ids.ndim != 1 or len(ids) != int(self._reader.maxDoc()):
            raise UsageError(f"{path}: {len(ids)} ids for an index of {int(self._reader.maxDoc())} documents "
                             "(the index was changed after it was built)")
        return ids

    def _compose_search(self, jclass):
        """One ``MethodHandle`` ``(String query, String n, String sortById) -> String`` doing the whole
        search in Java: a new classic ``QueryParser`` parses the query (it is not thread-safe, and
        cheap), the shared ``IndexSearcher`` searches (``sortById``: the id-sorted collector; else
        Lucene's top n by score), and ``Arrays.toString(topDocs.scoreDocs)`` returns every hit as text.

        Why one handle: pyjnius binds an instance method to its object through the method object of
        the *class*, shared by all threads, so two threads calling the same method on two different
        objects (two query parsers, two result lists) can each use the other's object. Worker threads
        therefore call only this one shared handle and static methods."""
        Class, MT = jclass("java.lang.Class"), jclass("java.lang.invoke.MethodType")
        MH = jclass("java.lang.invoke.MethodHandles")
        lookup = MH.publicLookup()
        c = Class.forName
        String, Query, TopDocs = c("java.lang.String"), c("org.apache.lucene.search.Query"), c("org.apache.lucene.search.TopDocs")
        Searcher, Sort, Analyzer = (c("org.apache.lucene.search.IndexSearcher"), c("org.apache.lucene.search.Sort"),
                                    c("org.apache.lucene.analysis.Analyzer"))
        QP = c("org.apache.lucene.queryparser.classic.QueryParser")
        INT, BOOL = jclass("java.lang.Integer").TYPE, jclass("java.lang.Boolean").TYPE
        hits_t = c("[Lorg.apache.lucene.search.ScoreDoc;")
        # TopDocs -> String: pyjnius would turn a returned ScoreDoc[] into a list of proxies, one JNI
        # round trip per hit.
        to_string = MH.filterReturnValue(
            lookup.findGetter(TopDocs, "scoreDocs", hits_t),
            lookup.findStatic(c("java.util.Arrays"), "toString", MT.methodType(String, c("[Ljava.lang.Object;")))
            .asType(MT.methodType(String, hits_t)))
        by_score = lookup.findVirtual(Searcher, "search", MT.methodType(TopDocs, Query, INT)).bindTo(self._searcher)
        by_id = lookup.findVirtual(Searcher, "search", MT.methodType(c("org.apache.lucene.search.TopFieldDocs"), Query,
                                                                      INT, Sort, BOOL)).bindTo(self._searcher)
        # Arguments cross as strings: pyjnius passes a Python bool or int in an Object[] badly.
        true = MH.insertArguments(lookup.findStatic(c("java.lang.Boolean"), "parseBoolean", MT.methodType(BOOL, String)),
                                  0, "true")
        by_id = MH.collectArguments(MH.insertArguments(by_id, 2, self._sort), 2, true)
        by_id = by_id.asType(MT.methodType(TopDocs, Query, INT))
        fast = MH.dropArguments(MH.filterReturnValue(by_score, to_string), 2, String)
        exact_ties = MH.dropArguments(MH.filterReturnValue(by_id, to_string), 2, String)
        # the third argument empty: Lucene's top n by score; else the id-sorted collector
        test = MH.dropArguments(lookup.findVirtual(String, "isEmpty", MT.methodType(BOOL)), 0, Query, INT)
        chosen = MH.guardWithTest(test, fast, exact_ties)  # (Query, int, String) -> String
        # one inserted argument per call: pyjnius types an Object[] after its first element
        new_parser = MH.insertArguments(lookup.findConstructor(QP, MT.methodType(jclass("java.lang.Void").TYPE, String, Analyzer)),
                                        1, jclass("org.apache.lucene.analysis.core.WhitespaceAnalyzer")())
        new_parser = MH.insertArguments(new_parser, 0, "contents")
        parse = MH.collectArguments(lookup.findVirtual(QP, "parse", MT.methodType(Query, String)), 0, new_parser)
        parse_int = lookup.findStatic(c("java.lang.Integer"), "parseInt", MT.methodType(INT, String))
        self._List = jclass("java.util.List")
        return MH.filterArguments(chosen, 0, parse, parse_int)  # (String query, String n, String sort) -> String

    def _call(self, qstr: str, n: int, by_id: bool) -> str:
        args = self._List.of(qstr, str(n), "id" if by_id else "")
        return self._search_fn.invokeWithArguments(args, signature="(Ljava/util/List;)Ljava/lang/Object;")

    def _search_one(self, query: Mapping[str, int], k: int) -> list[Hit]:
        qstr = query_string(query)
        try:
            if self._docids is not None:
                # Lucene's own top-(k+1) by score (ties by its internal number, block-max skipping):
                # half the cost of the id-sorted collector. Exact unless the k-th and (k+1)-th scores
                # tie, when which of the tied documents make the cut depends on their ids.
                found = _SCORE_DOC.findall(self._call(qstr, k + 1, False))
                if len(found) <= k or float(found[k - 1][1]) != float(found[k][1]):
                    docs = [int(d) for d, _ in found[:k]]
                    ids = self._docids[docs].tolist() if docs else []
                    hits = [(i, float(round(float(sc)))) for i, (_, sc) in zip(ids, found)]
                    hits.sort(key=lambda h: (-h[1], h[0]))
                    return hits
            text = self._call(qstr, k, True)
        except Exception as e:
            if type(e).__name__ == "JavaException":
                raise _java_error(e) from None
            raise
        return parse_hits(text, k)

    def _raw_batch(self, queries: Mapping[str, Mapping[str, int]], k: int, threads: int) -> dict[str, list[Hit]]:
        if self._searcher is None:
            raise UsageError("search on a closed searcher")
        if threads == 1 or len(queries) == 1:
            return {qid: self._search_one(q, k) for qid, q in queries.items()}
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
                while not stop.is_set():
                    with lock:
                        i = next(next_i, None)
                    if i is None:
                        return
                    qid, q = items[i]
                    out[qid] = self._search_one(q, k)
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
            # Anserini's batch reports only "queryCount = n is not equal to completedTaskCount = m":
            # search the batch's queries one at a time to name the one that fails, and why.
            for qid in qids:
                try:
                    self._searcher.search(queries[qid], k=1)
                except Exception as e1:  # e.g. more distinct terms than Lucene's clause limit
                    raise UsageError(f"query {qid!r} ({len(queries[qid]):,} characters) cannot be searched: "
                                     f"{str(_java_error(e1))}") from None
            raise _java_error(e) from None
        return {qid: sort_hits(((h.docid, h.score) for h in res.get(qid, [])), k) for qid in qids}

    def close(self):
        if getattr(self, "_searcher", None) is not None:
            self._searcher.close()
            self._searcher = None
