"""Re-exports of :mod:`pyserini_splare.formats.index_meta` (the index metadata's owner), kept while
importers move; plus ``BUILDERS`` and ``load_callable`` until the backend registry replaces them.
"""

from __future__ import annotations

from ..formats.index_meta import INDEX_FORMAT, INDEX_META_FILE, read_index_meta, write_index_meta

from .._cli import UsageError

# Backend name -> "module:callable" building it. Explicit, imported lazily (no torch/JVM/faiss at import).
BUILDERS: dict[str, str] = {
    "lucene": "pyserini_splare.index.lucene:build_impact_index",
    "bm25": "pyserini_splare.index.lucene:build_bm25_index",
    "seismic": "pyserini_splare.index.seismic:build_seismic_index",
    "exact": "pyserini_splare.index.exact:build_exact_index",
    "faiss": "pyserini_splare.index.faiss:build_faiss_index",
}


def load_callable(spec: str):
    import importlib

    module, _, name = spec.partition(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("pyserini_splare"):
            raise UsageError(f"{module} is not available in this version of pyserini_splare") from None
        raise UsageError(f"{module} needs the package {e.name!r}: pip install it") from None
    return getattr(mod, name)
