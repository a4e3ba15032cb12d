"""Indexing: vectors directories -> Lucene impact / Seismic / exact / faiss indexes; raw text -> BM25.

``python -m pyserini_splare.index --backend lucene --input VECTORS --index OUT`` (see ``--help``);
in Python, :func:`build_index`. The backends and their options are declared in
:mod:`pyserini_splare.backends`; their builders are named in :mod:`.backends` and imported lazily:
importing this package starts no JVM and imports no torch or faiss.
"""

from ..formats.index_meta import INDEX_META_FILE, read_index_meta, write_index_meta
from .backends import BACKENDS, Backend, build_index, get_backend

__all__ = ["BACKENDS", "Backend", "INDEX_META_FILE", "build_index", "get_backend", "read_index_meta",
           "write_index_meta"]
