"""Lucene searchers (Anserini through pyjnius, in-process): impact (learned sparse) and BM25.

Both run each query as one JNI call of a ``MethodHandle`` composed in Java (query -> search ->
``Arrays.toString(scoreDocs)``), and neither imports Pyserini's Python package: its
``pyserini.search.lucene`` imports torch, transformers and an OpenAI client (7 s and ~600 MB here),
none of which a Lucene search needs.
"""

from __future__ import annotations

import re
import struct
from math import floor
from typing import Any, Callable, Mapping

from .._errors import UsageError
from .base import Hit, Searcher, SparseSearcher, check_k_threads

_SEARCH_FAILED = "Anserini search failed"


def _java_error(e: Exception) -> UsageError:
    from .._java import java_error

    return java_error(_SEARCH_FAILED, e)


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

    Anserini's ``SimpleImpactSearcher`` query under ``ImpactSimilarity``, without its per-hit costs; ties at the
    cut-off resolved by the ``id`` doc values; every query term counts (no ``min_idf``); scores are the integer
    dot products. How and why: docs/backends.md, "Lucene impact". Two searchers should not be used from two
    threads at once (see :meth:`_compose_search`).
    """

    backend = "lucene"

    def __init__(self, index_dir, meta=None):
        super().__init__(index_dir, meta)
        from .._java import jclass

        try:
            self._reader, self._searcher = _open_index(index_dir)
        except Exception as e:
            raise _java_error(e) from None
        IndexSearcher = jclass("org.apache.lucene.search.IndexSearcher")
        self._searcher.setSimilarity(jclass("io.anserini.search.similarity.ImpactSimilarity")())
        # Unpooled learned-sparse queries can have thousands of terms (Lucene's default limit: 1024).
        if IndexSearcher.getMaxClauseCount() < 1 << 16:
            IndexSearcher.setMaxClauseCount(1 << 16)
        self._search_fn = self._compose_search(jclass)
        self.num_docs = int(self._reader.numDocs())
        self._docids = self._load_docid_table()

    def _load_docid_table(self):
        """The builder's table of ids in Lucene docid order, or None (an index built before it existed:
        then every search uses the id-sorted collector)."""
        from ..formats.docids import read_docids

        return read_docids(self.index_dir, int(self._reader.maxDoc()), required=False)

    def _compose_search(self, jclass):
        """One ``MethodHandle`` ``(String query, String n, String sortById) -> String`` doing the whole
        search in Java: a new classic ``QueryParser`` parses the query (it is not thread-safe, and
        cheap), the shared ``IndexSearcher`` searches (``sortById``: the id-sorted collector; else
        Lucene's top n by score), and ``Arrays.toString(topDocs.scoreDocs)`` returns every hit as text.

        Why one handle: pyjnius binds an instance method to its object through the method object of
        the *class*, shared by all threads, so two threads calling the same method on two different
        objects (two query parsers, two result lists) can each use the other's object. Worker threads
        therefore call only this one shared handle and static methods."""
        from .._java import method_handles

        MH, MT, c, lookup = method_handles()
        String, Query, TopDocs = c("java.lang.String"), c("org.apache.lucene.search.Query"), c("org.apache.lucene.search.TopDocs")
        Searcher, Analyzer = c("org.apache.lucene.search.IndexSearcher"), c("org.apache.lucene.analysis.Analyzer")
        QP = c("org.apache.lucene.queryparser.classic.QueryParser")
        INT, BOOL = jclass("java.lang.Integer").TYPE, jclass("java.lang.Boolean").TYPE
        to_string = _hits_as_text(MH, MT, c, lookup)
        by_score = lookup.findVirtual(Searcher, "search", MT.methodType(TopDocs, Query, INT)).bindTo(self._searcher)
        by_id = _by_id_search(jclass, MH, MT, c, lookup, self._searcher)
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
        return _invoke(self._search_fn, self._List.of(qstr, str(n), "id" if by_id else ""))

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

    def warmup_queries(self, n: int, seed: int = 0) -> list:
        """``n`` quantized queries of 2-24 terms drawn from the index (weights 1-100): what a server searches
        before it accepts, so that the JVM has compiled the search (see :func:`sample_terms`)."""
        from .base import QuantizedQuery

        return [QuantizedQuery({t: w for t, w in q}) for q in _warmup_bags(self._reader, n, seed, weights=True)]

    def _raw_batch(self, queries: Mapping[str, Mapping[str, int]], k: int, threads: int) -> dict[str, list[Hit]]:
        if self._searcher is None:
            raise UsageError("search on a closed searcher")
        return search_threaded(queries, lambda q: self._search_one(q, k), threads)

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
    """BM25 (Anserini's defaults k1=0.9, b=0.4) as Anserini's ``SimpleSearcher`` ranks it, without its per-hit cost.

    The same analyzer, similarity, query generator and collector run in one composed Java call per query, and
    :func:`adjust_ties` applies Anserini's tie rule, so the run is Anserini's, score for score (tested against
    ``SimpleSearcher``; docs/search.md).
    """

    backend = "bm25"

    def __init__(self, index_dir, meta=None, **options):
        """``options``: :class:`pyserini_splare.backends.Bm25Search` (k1, b)."""
        from ..backends import get_backend

        o = get_backend(self.backend).check_search_options(options)
        super().__init__(index_dir, meta)
        from .._java import jclass

        self._reader = None
        lang = self.meta.get("language") or "en"
        try:
            if lang == "en":
                # SimpleSearcher's own defaults, without loading it (its log4j set-up slows the start)
                analyzer = jclass("io.anserini.analysis.DefaultEnglishAnalyzer").newDefaultInstance()
            else:  # the language's analyzer as Anserini chooses it
                anserini = jclass("io.anserini.search.SimpleSearcher")(str(index_dir))
                anserini.set_language(lang)
                analyzer = anserini.get_analyzer()
                anserini.close()
            similarity = jclass("org.apache.lucene.search.similarities.BM25Similarity")(float(o["k1"]), float(o["b"]))
            self._reader, searcher = _open_index(index_dir)
        except Exception as e:
            raise _java_error(e) from None
        searcher.setSimilarity(similarity)
        self._search_fn = _compose_bm25(jclass, searcher, analyzer)
        self._search_many_fn = _compose_many(jclass, self._search_fn)
        self._List = jclass("java.util.List")
        self.num_docs = int(self._reader.numDocs())

    def _search_one(self, text: str, k: int) -> list[Hit]:
        try:
            out = _invoke(self._search_fn, self._List.of(text, str(k)))
        except Exception as e:
            if type(e).__name__ == "JavaException":  # e.g. more distinct terms than Lucene's clause limit
                raise UsageError(f"query ({len(text):,} characters) cannot be searched: {_java_error(e)}") from None
            raise
        return self._hits(out, k)

    @staticmethod
    def _hits(out: str, k: int) -> list[Hit]:
        hits = _HIT.findall(out)[:k]
        ids = [bytes.fromhex(h).decode("utf-8") for _, h in hits]
        return list(zip(ids, adjust_ties([sc for sc, _ in hits])))

    def _search_many(self, texts: list[str], k: int) -> list[list[Hit]] | None:
        """Each text's hits from one JNI call searching them all in turn (the same search as
        :meth:`_search_one`'s); None when one of them fails or contains the separator (the caller
        searches them one by one, for the failing query's own error).
        Why: each Java call takes Python's lock back once (docs/serve.md, "Lucene batches are one JNI call")."""
        if len(texts) == 1 or any(_SEP in t for t in texts):
            return None
        try:
            out = _invoke(self._search_many_fn, self._List.of(_SEP.join(texts), str(k)))
        except Exception as e:
            if type(e).__name__ == "JavaException":
                return None
            raise
        found = out.split("\n")
        if len(found) != len(texts) + 1:  # never: ids are written as hex, and each result ends with one newline
            return None
        return [self._hits(f, k) for f in found[:-1]]

    def warmup_queries(self, n: int, seed: int = 0) -> list[str]:
        """``n`` query texts of 2-24 terms drawn from the index (see :meth:`ImpactSearcher.warmup_queries`)."""
        return [" ".join(t for t, _ in q) for q in _warmup_bags(self._reader, n, seed)]

    def batch_search(self, queries: Mapping[str, Any], k: int = 1000, threads: int = 1) -> dict[str, list[Hit]]:
        check_k_threads(k, threads)
        for qid, q in queries.items():
            if not isinstance(q, str):
                raise UsageError(f"query {qid!r}: a BM25 index is searched with text, got {type(q).__name__}")
        if self._reader is None:
            raise UsageError("search on a closed searcher")

        def one(item):
            qid, text = item
            try:
                return self._search_one(text, k)
            except UsageError as e:
                raise UsageError(f"query {qid!r} {str(e).removeprefix('query ')}") from None

        if threads > 1:
            return search_threaded({qid: (qid, q) for qid, q in queries.items()}, one, threads)
        out: dict[str, list[Hit]] = {}
        items = list(queries.items())
        step = max(1, min(_MANY, _MANY_HITS // k))  # a call's text stays a few MB at most
        for i in range(0, len(items), step):  # between two calls, Ctrl-C is seen
            chunk = items[i:i + step]
            many = self._search_many([q for _, q in chunk], k)
            if many is None:
                out.update((qid, one((qid, q))) for qid, q in chunk)
            else:
                out.update((qid, hits) for (qid, _), hits in zip(chunk, many))
        return out

    def close(self):
        if getattr(self, "_reader", None) is not None:
            self._reader.close()
            self._reader = None


def sample_terms(reader, n: int, seed: int = 0, field: str = "contents") -> dict[str, int]:
    """Up to ``n`` distinct terms of ``field`` and their document frequencies (in their segment), spread
    over the vocabulary: each a seek to a random one- or two-letter prefix and a few steps on (a script
    other than Latin: the steps from where its terms begin). A few JNI calls a term; no walk over the
    whole vocabulary (millions of terms on a web index)."""
    import random

    from .._java import jclass

    rng = random.Random(seed)
    # per segment (MultiTerms.getTerms's overloads defeat pyjnius): a random segment per draw
    leaves = reader.leaves()
    segments = [t for t in (leaves.get(i).reader().terms(field) for i in range(leaves.size())) if t is not None]
    if not segments:
        return {}
    BytesRef = jclass("org.apache.lucene.util.BytesRef")
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    found: dict[str, int] = {}
    for _ in range(4 * n):
        if len(found) >= n:
            break
        it = rng.choice(segments).iterator()
        prefix = "".join(rng.choice(letters) for _ in range(rng.randint(1, 2)))
        if it.seekCeil(BytesRef(prefix, signature="(Ljava/lang/CharSequence;)V")).toString() == "END":
            continue
        for _ in range(rng.randint(0, 16)):
            if it.next() is None:
                break
        else:
            found[it.term().utf8ToString()] = int(it.docFreq())
    return found


def _warmup_bags(reader, n: int, seed: int, weights: bool = False) -> list[list[tuple[str, int]]]:
    """``n`` bags of 2-24 (term, weight 1-100) drawn from :func:`sample_terms` (weight 1 unless ``weights``),
    each term with a chance in proportion to its document frequency: most terms of a vocabulary are
    rare, a query's are not, and long postings are what the search's hot code reads."""
    import random

    vocab = sample_terms(reader, 512, seed)
    if not vocab:
        return []
    rng = random.Random(seed)
    terms, dfs = list(vocab), list(vocab.values())
    return [[(t, rng.randint(1, 100) if weights else 1) for t in dict.fromkeys(rng.choices(terms, dfs, k=rng.randint(2, 24)))]
            for _ in range(n)]


def adjust_ties(scores: list[str]) -> list[float]:
    """Anserini's ``ScoreTiesAdjusterReranker`` on hits sorted by (score desc, id asc): each float32 score
    rounded to 1e-4, and the i-th of a run of ties lowered by i x 1e-6, so that any tool sorting by
    score alone keeps Anserini's order. The rounding is done in double precision and stored as float32,
    which is what Anserini 1.7's reranker gives (checked on all 58,571 hits of CACM's 64 topics; a
    float32 product rounds 4.60875 up, Anserini down)."""
    # float32 arithmetic without numpy scalars (faster, under the GIL for every served query): each
    # operation is the exact double result rounded once to float32 (struct 'f'); the differences and
    # products here are exact in double. Checked against numpy in tests/test_adjust_ties.py.
    out: list[float] = []
    prev, dup = 0.0, 0
    for i, text in enumerate(scores):
        s = _f32(floor(_f32(float(text)) * 1e4 + 0.5) / 1e4)
        if i == 0 or _f32(prev - s) > _GAP:
            dup = 0
        else:
            dup += 1
            s = _f32(s - _f32(_E6 * dup))
        prev = s
        out.append(s)
    return out


def _f32(x: float) -> float:
    """``x`` rounded to the nearest float32 (ties to even), as a Python float."""
    return _FLOAT32.unpack(_FLOAT32.pack(x))[0]


_FLOAT32 = struct.Struct("f")
_E6, _GAP = _f32(1e-6), _f32(1e-4)


def _open_index(index_dir):
    """A Lucene ``DirectoryReader`` on ``index_dir`` and an ``IndexSearcher`` over it."""
    from .._java import fs_directory, jclass

    reader = jclass("org.apache.lucene.index.DirectoryReader").open(fs_directory(index_dir))
    # IndexSearcher(IndexReader) vs (IndexReaderContext): pyjnius needs the signature.
    searcher = jclass("org.apache.lucene.search.IndexSearcher")(reader, signature="(Lorg/apache/lucene/index/IndexReader;)V")
    return reader, searcher


def _invoke(handle, args) -> str:
    """``handle.invokeWithArguments(args)``, ``args`` a ``java.util.List`` (the signature pyjnius needs)."""
    return handle.invokeWithArguments(args, signature="(Ljava/util/List;)Ljava/lang/Object;")


def _hits_as_text(MH, MT, c, lookup):
    """A handle ``TopDocs -> String``: ``Arrays.toString(topDocs.scoreDocs)`` (pyjnius would turn a returned
    ``ScoreDoc[]`` into a list of proxies, one JNI round trip per hit)."""
    hits_t = c("[Lorg.apache.lucene.search.ScoreDoc;")
    return MH.filterReturnValue(
        lookup.findGetter(c("org.apache.lucene.search.TopDocs"), "scoreDocs", hits_t),
        lookup.findStatic(c("java.util.Arrays"), "toString", MT.methodType(c("java.lang.String"),
                                                                           c("[Ljava.lang.Object;")))
        .asType(MT.methodType(c("java.lang.String"), hits_t)))


def _by_id_search(jclass, MH, MT, c, lookup, searcher):
    """A handle ``(Query, int) -> TopDocs``: ``searcher``'s top n sorted by (score desc, ``id`` asc), Anserini's
    collector."""
    Query, TopDocs = c("org.apache.lucene.search.Query"), c("org.apache.lucene.search.TopDocs")
    INT, BOOL = jclass("java.lang.Integer").TYPE, jclass("java.lang.Boolean").TYPE
    SortField = jclass("org.apache.lucene.search.SortField")
    sort = jclass("org.apache.lucene.search.Sort")(
        SortField.FIELD_SCORE, SortField("id", jclass("org.apache.lucene.search.SortField$Type").STRING_VAL))
    by_id = lookup.findVirtual(c("org.apache.lucene.search.IndexSearcher"), "search",
                               MT.methodType(c("org.apache.lucene.search.TopFieldDocs"), Query, INT,
                                             c("org.apache.lucene.search.Sort"), BOOL)).bindTo(searcher)
    # Arguments cross as strings: pyjnius passes a Python bool or int in an Object[] badly.
    true = MH.insertArguments(lookup.findStatic(c("java.lang.Boolean"), "parseBoolean",
                                                MT.methodType(BOOL, c("java.lang.String"))), 0, "true")
    by_id = MH.collectArguments(MH.insertArguments(by_id, 2, sort), 2, true)
    return by_id.asType(MT.methodType(TopDocs, Query, INT))


def _compose_bm25(jclass, searcher, analyzer):
    """One handle ``(String text, String n) -> String``: Anserini's ``BagOfWordsQueryGenerator`` builds the
    query on field ``contents`` with ``analyzer``, the id-sorted collector searches, the hits come back
    as text (see :meth:`ImpactSearcher._compose_search` for why one shared handle)."""
    from .._java import method_handles

    MH, MT, c, lookup = method_handles()
    String, Query = c("java.lang.String"), c("org.apache.lucene.search.Query")
    Generator = c("io.anserini.search.query.BagOfWordsQueryGenerator")
    build = lookup.findVirtual(Generator, "buildQuery", MT.methodType(Query, String, c("org.apache.lucene.analysis.Analyzer"),
                                                                      String))
    build = MH.insertArguments(build.bindTo(jclass("io.anserini.search.query.BagOfWordsQueryGenerator")()), 0,
                               "contents")
    build = MH.insertArguments(build, 0, analyzer)  # (String text) -> Query
    parse_int = lookup.findStatic(c("java.lang.Integer"), "parseInt",
                                  MT.methodType(jclass("java.lang.Integer").TYPE, String))
    search = MH.filterReturnValue(_by_id_search(jclass, MH, MT, c, lookup, searcher), _hits_as_text(MH, MT, c, lookup))
    return MH.filterArguments(search, 0, build, parse_int)


_SEP = "\x1e"  # between the texts of a batch: ASCII's record separator, which no analyzer keeps
_MANY, _MANY_HITS = 32, 32_000  # queries a batch call, and their hits in all (k = 1000: 32 queries)


def _compose_many(jclass, one):
    """A handle ``(String texts, String n) -> String``: ``texts`` split at :data:`_SEP`, each searched by
    ``one`` (``(String text, String n) -> String``) in turn, the results joined, each ended by a newline
    (``MethodHandles.iteratedLoop`` over a ``StringBuilder``)."""
    from .._java import method_handles

    MH, MT, c, lookup = method_handles()
    String, SB, List = c("java.lang.String"), c("java.lang.StringBuilder"), c("java.util.List")
    INT = jclass("java.lang.Integer").TYPE
    append = lookup.findVirtual(SB, "append", MT.methodType(SB, String))
    step = MH.filterReturnValue(MH.collectArguments(append, 1, one), MH.insertArguments(append, 1, "\n"))
    # the loop's body (StringBuilder, element, List, n) -> StringBuilder; its start: a new StringBuilder
    body = MH.dropArguments(step.asType(MT.methodType(SB, SB, c("java.lang.Object"), String)), 2, List)
    init = MH.dropArguments(lookup.findConstructor(SB, MT.methodType(jclass("java.lang.Void").TYPE)), 0, List, String)
    loop = MH.filterReturnValue(MH.iteratedLoop(None, init, body),
                                lookup.findVirtual(SB, "toString", MT.methodType(String)).asType(MT.methodType(String, SB)))
    # texts.split(SEP, -1) as a List (-1: an empty last text is kept); the int crosses as a string
    split = lookup.findVirtual(String, "split", MT.methodType(c("[Ljava.lang.String;"), String, INT))
    split = MH.collectArguments(MH.insertArguments(split, 1, _SEP), 1, MH.insertArguments(
        lookup.findStatic(c("java.lang.Integer"), "parseInt", MT.methodType(INT, String)), 0, "-1"))
    as_list = lookup.findStatic(c("java.util.Arrays"), "asList", MT.methodType(List, c("[Ljava.lang.Object;")))
    return MH.filterArguments(loop, 0, MH.filterReturnValue(split, as_list.asType(MT.methodType(List, c("[Ljava.lang.String;")))))


def search_threaded(queries: Mapping[str, Any], search_one: Callable[[Any], list[Hit]], threads: int) -> dict[str, list[Hit]]:
    """``{qid: search_one(query)}``, the queries spread over ``threads`` threads.

    With one thread the queries run one by one in the calling thread (each is one short JNI call, so
    Ctrl-C is seen between two); with several, worker threads search (pyjnius releases the GIL during
    Java calls) while the calling thread waits in 50 ms joins, and on Ctrl-C tells the workers to stop
    after their current query. ``search_one`` must call only a shared composed handle and static
    methods (see :meth:`ImpactSearcher._compose_search` for why)."""
    import threading

    if threads == 1 or len(queries) <= 1:
        return {qid: search_one(q) for qid, q in queries.items()}
    threads = min(threads, len(queries))

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
                out[qid] = search_one(q)
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
