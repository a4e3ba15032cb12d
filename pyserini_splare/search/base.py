"""One searcher interface for every backend.

``batch_search({qid: query}, k, threads) -> {qid: [(docid, score), ...]}``, hits by score descending, ties by
docid ascending; sparse queries are ``{term: weight}`` in the index's feature space, BM25's text, dense ones
vectors.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Any, Mapping

from .._errors import UsageError
from ..formats.index_meta import read_index_meta

Hit = tuple[str, float]


class QuantizedQuery(dict):
    """A ``{term: int weight}`` query already in the index's integer units (``--query-vectors-quantized``):
    its weights are used as they are, where a plain mapping's are quantized with the index's scale.
    """


def sort_hits(hits, k: int) -> list[Hit]:
    """Order by score descending then docid ascending (the ordering every backend promises), cut at k."""
    return sorted(((str(d), float(s)) for d, s in hits), key=lambda h: (-h[1], h[0]))[:k]


def check_k_threads(k: int, threads: int = 1) -> None:
    """The arguments every ``batch_search`` validates the same way."""
    if k <= 0:
        raise UsageError(f"k must be positive, got {k}")
    if threads < 1:
        raise UsageError(f"threads must be >= 1, got {threads}")


class Searcher(ABC):
    """Base class: ``meta`` is the index metadata; subclasses implement :meth:`batch_search`."""

    backend: str = ""

    def __init__(self, index_dir: str | os.PathLike, meta: Mapping[str, Any] | None = None):
        self.index_dir = str(index_dir)
        self.meta = dict(meta) if meta is not None else read_index_meta(index_dir)

    @abstractmethod
    def batch_search(self, queries: Mapping[str, Any], k: int = 1000, threads: int = 1) -> dict[str, list[Hit]]:
        ...

    def search(self, query: Any, k: int = 1000) -> list[Hit]:
        return self.batch_search({"q": query}, k, 1)["q"]

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SparseSearcher(Searcher):
    """A searcher over a sparse index built from a vectors directory (lucene, seismic, exact).

    Query terms must be in the index's feature space (never silently dropped); weights are quantized by
    :meth:`prepare`.
    """

    def __init__(self, index_dir, meta=None):
        super().__init__(index_dir, meta)
        from ..formats.vectors_meta import VectorsMeta

        if "vectors" not in self.meta:
            raise UsageError(f"{index_dir}: index metadata has no vectors metadata")
        self.vectors_meta = VectorsMeta.from_json(self.meta["vectors"], f"{index_dir} metadata")
        self.space = self.vectors_meta.space
        self.scale = self.vectors_meta.quant_scale

    def prepare(self, qid: str, vector: Mapping[str, float]) -> dict[str, int]:
        """Validate a ``{term: weight}`` query against the feature space and quantize it with the index's
        scale (a :class:`QuantizedQuery`'s integer weights are used as they are); zero weights are dropped.
        """
        import math

        from ..formats.query_vectors import quantize_query

        if not vector:
            raise UsageError(f"query {qid!r}: empty vector")
        for term, w in vector.items():
            try:
                self.space.id(term)
            except KeyError:
                raise UsageError(f"query {qid!r}: term {term!r} is not in the index's feature space "
                                 f"{self.space!r} (query vectors from another encoder?)") from None
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
                raise UsageError(f"query {qid!r}: weight of {term!r} must be a finite non-negative number, got {w!r}")
        out = quantize_query(vector, self.scale, quantized=isinstance(vector, QuantizedQuery), where=f"query {qid!r}")
        if not out:
            raise UsageError(f"query {qid!r}: every weight rounds to 0 at scale {self.scale:g}")
        return out
