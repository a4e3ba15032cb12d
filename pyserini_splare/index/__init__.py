"""Indexing: vectors directories -> Lucene impact / Seismic / SINDI / exact / faiss indexes; raw text -> BM25.

``python -m pyserini_splare.index`` or :func:`build_index`; builders are imported lazily (:mod:`.backends`), so
importing this package starts no JVM and imports no torch or faiss (docs/indexing.md).
"""

from ..formats.index_meta import INDEX_META_FILE, read_index_meta, write_index_meta
from .backends import BACKENDS, Backend, build_index, get_backend

__all__ = ["BACKENDS", "Backend", "INDEX_META_FILE", "build_index", "get_backend", "read_index_meta",
           "write_index_meta"]
