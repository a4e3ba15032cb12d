"""The search stage's table of searchers, one per backend of :mod:`pyserini_splare.backends`, and :func:`open_searcher`.

The backends and their search options are declared in :mod:`pyserini_splare.backends`; this module
says which class searches an index of each, as lazy ``"module:attr"`` strings (opening a BM25 index
imports no torch or faiss; an exact one starts no JVM).
"""

from __future__ import annotations

import os

from .._errors import UsageError
from .._lazy import load_callable
from ..backends import get_backend
from ..formats.index_meta import read_index_meta

SEARCHERS: dict[str, str] = {
    "lucene": "pyserini_splare.search.lucene:ImpactSearcher",
    "lucene-group": "pyserini_splare.search.group:LuceneGroupSearcher",
    "seismic": "pyserini_splare.search.seismic:SeismicSearcher",
    "exact": "pyserini_splare.search.exact:ExactSearcher",
    "sindi": "pyserini_splare.search.sindi:SindiSearcher",
    "faiss": "pyserini_splare.search.faiss:FaissSearcher",
    "bm25": "pyserini_splare.search.lucene:Bm25Searcher",
}


def open_searcher(index_dir: str | os.PathLike, **options):
    """Open the searcher matching the index's backend (from its metadata) with its search ``options``.

    An option the backend does not have, or a value out of its limits, is a UsageError (the options are
    declared in :mod:`pyserini_splare.backends`; the searcher receives all of them, checked).
    """
    meta = read_index_meta(index_dir)
    try:
        backend = get_backend(meta["backend"])
    except UsageError:
        raise UsageError(f"{index_dir}: unknown backend {meta['backend']!r} in index metadata") from None
    kwargs = backend.check_search_options(options)
    return load_callable(SEARCHERS[backend.name])(index_dir, meta=meta, **kwargs)
