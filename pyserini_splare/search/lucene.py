"""Lucene searchers (Anserini through pyjnius, in-process): impact (learned sparse) and BM25."""

from __future__ import annotations

from typing import Any, Mapping

from .._cli import UsageError
from ._base import Hit, Searcher, SparseSearcher, sort_hits, check_k_threads


def _java_error(e: Exception) -> UsageError:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return UsageError(f"Anserini search failed: {msg}")


class ImpactSearcher(SparseSearcher):
    """Anserini's ``SimpleImpactSearcher`` called directly.

    Pyserini's ``LuceneImpactSearcher`` drops query terms whose idf is <= ``min_idf`` (default 0:
    every term that occurs in all documents) and builds an idf table of the whole vocabulary in
    Python at start-up; we pass every query term through and skip that table.

    Anserini collects hits sorted by (score desc, docid asc), so the top-k is exact even where
    scores tie at the cut-off, then its ``ScoreTiesAdjusterReranker`` subtracts small epsilons from
    tied scores (4.0, 3.999999, 3.999998, ...) to make trec_eval keep that order. Query and document
    weights are integers here, so true scores are integers: we round the epsilons away and return
    exact dot products (exact below 2**24, Lucene's float32 limit for integer sums).
    """

    backend = "lucene"

    def __init__(self, index_dir, meta=None):
        super().__init__(index_dir, meta)
        from .._java import jclass

        try:
            self._searcher = jclass("io.anserini.search.SimpleImpactSearcher")(str(index_dir))
        except Exception as e:
            raise _java_error(e) from None
        self._JHashMap = jclass("java.util.HashMap")
        self._JArrayList = jclass("java.util.ArrayList")
        self._JInt = jclass("java.lang.Integer")
        self.num_docs = int(self._searcher.get_total_num_docs())

    def _jquery(self, q: Mapping[str, int]):
        m = self._JHashMap()
        for term, w in q.items():
            m.put(term, self._JInt(int(w)))
        return m

    def _raw_batch(self, queries: Mapping[str, Mapping[str, int]], k: int, threads: int) -> dict[str, list[Hit]]:
        jq, jids = self._JArrayList(), self._JArrayList()
        for qid, q in queries.items():
            jq.add(self._jquery(q))
            jids.add(qid)
        try:
            res = self._searcher.batch_search(jq, jids, int(k), int(threads))
        except Exception as e:
            raise _java_error(e) from None
        # One pass over the Java hits (each attribute read is a JNI call: this loop is most of our
        # cost beside Lucene's). Anserini's order is already (score desc, docid asc).
        return {e.getKey(): [(h.docid, float(round(h.score))) for h in e.getValue()] for e in res.entrySet().toArray()}

    def batch_search(self, queries: Mapping[str, Mapping[str, float]], k: int = 1000, threads: int = 1) -> dict[str, list[Hit]]:
        check_k_threads(k, threads)
        prepared = {qid: self.prepare(qid, v) for qid, v in queries.items()}
        raw = self._raw_batch(prepared, k, threads)
        return {qid: raw.get(qid, []) for qid in prepared}

    def close(self):
        if getattr(self, "_searcher", None) is not None:
            self._searcher.close()
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
