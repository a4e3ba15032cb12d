"""Search: one searcher interface over Lucene impact, BM25, Seismic, exact and faiss indexes.

``python -m pyserini_splare.search --index OUT --topics NAME --output RUN`` (see ``--help``); in
Python, :func:`open_searcher` on an index directory. Which searcher serves which index is recorded
in :mod:`pyserini_splare.backends` (searchers: ``SEARCHERS`` in :mod:`.registry`).
"""

from .base import Hit, QuantizedQuery, Searcher, SparseSearcher, sort_hits
from .registry import SEARCHERS, open_searcher

__all__ = ["Hit", "QuantizedQuery", "SEARCHERS", "Searcher", "SparseSearcher", "open_searcher", "sort_hits"]
