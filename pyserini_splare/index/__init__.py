"""Indexing: vectors directories -> Lucene impact / Seismic / exact / faiss indexes; raw text -> BM25.

``python -m pyserini_splare.index --backend lucene --input VECTORS --index OUT`` (see ``--help``).
Backends are imported lazily: importing this package starts no JVM and imports no torch or faiss.
"""

from ._meta import BUILDERS, INDEX_META_FILE, read_index_meta, write_index_meta

__all__ = ["BUILDERS", "INDEX_META_FILE", "read_index_meta", "write_index_meta", "build_index"]


def build_index(backend: str, input: str, index: str, **options):
    """Build an index of ``backend`` from ``input`` into ``index``; returns the index metadata."""
    from .._cli import UsageError
    from ._meta import load_callable

    if backend not in BUILDERS:
        raise UsageError(f"unknown backend {backend!r} (choose from {', '.join(BUILDERS)})")
    return load_callable(BUILDERS[backend])(input, index, **options)
