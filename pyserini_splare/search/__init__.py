"""Search: one searcher interface over every backend's indexes (docs/search.md).

``python -m pyserini_splare.search`` or :func:`open_searcher` on an index directory (searchers:
``SEARCHERS`` in :mod:`.registry`).
"""

from .base import Hit, QuantizedQuery, Searcher, SparseSearcher, sort_hits
from .registry import SEARCHERS, open_searcher

__all__ = ["Hit", "QuantizedQuery", "SEARCHERS", "Searcher", "SparseSearcher", "open_searcher", "sort_hits"]
