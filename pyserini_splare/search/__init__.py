"""Search: one searcher interface over Lucene impact, BM25, Seismic, exact and faiss indexes.

``python -m pyserini_splare.search --index OUT --topics NAME --output RUN`` (see ``--help``).
"""

from ._base import SEARCHERS, Hit, Searcher, SparseSearcher, open_searcher, sort_hits

__all__ = ["SEARCHERS", "Hit", "Searcher", "SparseSearcher", "open_searcher", "sort_hits"]
