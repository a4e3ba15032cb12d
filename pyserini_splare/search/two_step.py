"""Two-step search: a first stage on pruned vectors, then the top N rescored with the full ones.

Two-step SPLADE (Lassance et al., 2024): the full query's exact dot product with the full document vectors
of the index's forward store (:mod:`pyserini_splare.formats.forward_store`), in integer impacts, so with no
pruning and N at least the first stage's hits it returns what full search returns (docs/search.md).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .._errors import UsageError
from .base import Hit, Searcher, SparseSearcher, check_k_threads, sort_hits


class TwoStepSearcher(Searcher):
    """Wraps a first-stage :class:`SparseSearcher`: ``batch_search(queries, k)`` asks it for ``depth``
    candidates per query (queries pruned by ``topk``/``mass``), rescores them with the full queries
    against the forward store and returns the best ``min(k, depth)``."""

    def __init__(self, first: SparseSearcher, depth: int, *, topk: int = 0, mass: float | None = None):
        from ..formats.forward_store import open_forward_store

        if isinstance(depth, bool) or not isinstance(depth, int) or depth <= 0:
            raise UsageError(f"--rescore must be a positive number of candidates, got {depth!r}")
        if not isinstance(first, SparseSearcher):
            raise UsageError(f"--rescore needs a sparse index (lucene, seismic, exact), not {first.backend}")
        super().__init__(first.index_dir, first.meta)
        self.first, self.depth, self.topk, self.mass = first, depth, topk, mass
        self.backend = first.backend
        self.space = first.space
        self.store = open_forward_store(first.index_dir, first.meta)

    def first_stage_queries(self, queries: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
        from .queries import prune_queries

        return prune_queries(queries, self.topk, self.mass)

    def rescore(self, qid: str, query: Mapping[str, float], candidates: list[Hit], k: int) -> list[Hit]:
        """The ``k`` best of ``candidates`` by the full query's exact dot product with their full vectors."""
        if not candidates:
            return []
        prepared = self.first.prepare(qid, query)  # validated, quantized at the index's scale
        q_ids = self.space.ids(prepared)
        q_w = np.fromiter(prepared.values(), dtype=np.int64, count=len(prepared))
        docids = [d for d, _ in candidates]
        scores = self.store.scores(q_ids, q_w, self.store.rows(docids))
        return sort_hits(zip(docids, scores.tolist()), k)

    def batch_search(self, queries: Mapping[str, Any], k: int = 1000, threads: int = 1) -> dict[str, list[Hit]]:
        check_k_threads(k, threads)
        cands = self.first.batch_search(self.first_stage_queries(queries), k=self.depth, threads=threads)
        return {q: self.rescore(q, queries[q], cands.get(q, []), k) for q in queries}

    def close(self) -> None:
        self.first.close()
