"""Exact sparse search: brute-force int64 dot products over a scipy CSR inverted index.

The reference for every approximate backend: the scores of Lucene's impact scoring, hits ordered by score
descending then docid ascending (:func:`sort_hits`), so ties never depend on index order.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Mapping

import numpy as np

from .._errors import UsageError
from .base import Hit, SparseSearcher, sort_hits, check_k_threads


def _load_error(path, e) -> UsageError:
    return UsageError(f"{path}: cannot read the exact index ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                      "rebuild it with `python -m pyserini_splare.index --backend exact`")


def top_k(scores: np.ndarray, cols: np.ndarray, docids: np.ndarray, k: int) -> list[Hit]:
    """The k best ``(docid, score)`` among non-zero ``scores`` at document numbers ``cols``.

    argpartition finds the k-th best score; every document scoring at least that much is kept
    (ties at the cut-off included) and :func:`sort_hits` orders them by (score desc, docid asc).
    """
    if scores.size > k:
        kth = np.partition(scores, scores.size - k)[scores.size - k]
        sel = np.nonzero(scores >= kth)[0]
        scores, cols = scores[sel], cols[sel]
    return sort_hits(zip(docids[cols].tolist(), scores.tolist()), k)


class ExactSearcher(SparseSearcher):
    """Brute force: ``scores = Q @ P`` with ``P`` the (features x documents) integer CSR matrix.

    Only the posting lists of the query's terms are touched (a sparse-sparse product), so a query
    costs the sum of its terms' posting-list lengths. ``threads`` splits a batch across threads.
    """

    backend = "exact"

    def __init__(self, index_dir, meta=None, **options):
        """``options``: :class:`pyserini_splare.backends.ExactSearch` (defaults and limits declared there)."""
        from ..backends import get_backend

        batch_size = get_backend(self.backend).check_search_options(options)["batch_size"]
        super().__init__(index_dir, meta)
        import scipy.sparse as sp

        from ..formats.docids import read_docids
        from ..formats.exact_index import POSTINGS_FILE

        d = Path(index_dir)
        try:
            self.postings = sp.load_npz(d / POSTINGS_FILE).tocsr()
        except Exception as e:  # zip/npy errors of every kind on a truncated or corrupt file
            raise _load_error(d / POSTINGS_FILE, e) from None
        self.docids = read_docids(d)
        # int64 once here: scipy would otherwise upcast the whole int32 matrix to the query's int64
        # on every product (a copy of all postings per call), and int32 sums could overflow.
        self.postings.data = self.postings.data.astype(np.int64)
        if self.postings.shape != (self.space.size, self.docids.size):
            raise UsageError(f"{index_dir}: exact index is inconsistent: postings {self.postings.shape}, "
                             f"{self.docids.size} docids, feature space of size {self.space.size}")
        self.batch_size = batch_size
        self.num_docs = int(self.docids.size)

    def _query_matrix(self, prepared: list[dict[str, int]]):
        import scipy.sparse as sp

        indptr = np.zeros(len(prepared) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(q) for q in prepared])
        cols = np.fromiter((self.space.id(t) for q in prepared for t in q), dtype=np.int64, count=int(indptr[-1]))
        vals = np.fromiter((w for q in prepared for w in q.values()), dtype=np.int64, count=int(indptr[-1]))
        m = sp.csr_matrix((vals, cols, indptr), shape=(len(prepared), self.space.size))
        m.sum_duplicates()
        return m

    def _search_block(self, prepared: list[dict[str, int]], k: int) -> list[list[Hit]]:
        scores = (self._query_matrix(prepared) @ self.postings).tocsr()  # int64: exact
        out = []
        for i in range(len(prepared)):
            a, b = scores.indptr[i], scores.indptr[i + 1]
            out.append(top_k(scores.data[a:b], scores.indices[a:b], self.docids, k))
        return out

    def batch_search(self, queries: Mapping[str, Mapping[str, float]], k: int = 1000, threads: int = 1) -> dict[str, list[Hit]]:
        check_k_threads(k, threads)
        qids = list(queries)
        prepared = [self.prepare(qid, queries[qid]) for qid in qids]
        size = self.batch_size
        if threads > 1:  # a multiple of `threads` blocks of equal size: 200 queries on 2 threads as 4 x 50, not 64+64+64+8
            n_blocks = threads * -(-len(prepared) // (threads * self.batch_size))
            size = max(1, -(-len(prepared) // n_blocks))
        blocks = [prepared[i:i + size] for i in range(0, len(prepared), size)]
        if threads > 1 and len(blocks) > 1:
            with ThreadPoolExecutor(threads) as pool:
                results = list(pool.map(lambda blk: self._search_block(blk, k), blocks))
        else:
            results = [self._search_block(blk, k) for blk in blocks]
        hits = [h for blk in results for h in blk]
        return dict(zip(qids, hits))
