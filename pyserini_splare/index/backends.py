"""The index stage's table of builders, one per backend of :mod:`pyserini_splare.backends`.

Builders are named as lazy ``"module:attr"`` strings (no torch, JVM or faiss at import), with one signature::

    build(inputs: list[path], index: path, *, threads=1, overwrite=False, **options) -> index metadata
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from .._errors import UsageError
from .._lazy import load_callable
from ..backends import BACKENDS, Backend, get_backend

BUILDERS: dict[str, str] = {
    "lucene": "pyserini_splare.index.lucene_impact:build",
    "lucene-group": "pyserini_splare.index.lucene_group:build_lucene_group",
    "seismic": "pyserini_splare.index.seismic:build_seismic_index",
    "exact": "pyserini_splare.index.exact:build_exact_index",
    "sindi": "pyserini_splare.index.sindi:build_sindi_index",
    "faiss": "pyserini_splare.index.faiss:build_faiss_index",
    "bm25": "pyserini_splare.index.bm25:build_bm25_index",
}

__all__ = ["BACKENDS", "BUILDERS", "Backend", "build_index", "get_backend"]


def build_index(backend: str, inputs: str | os.PathLike | Sequence[str | os.PathLike], index: str | os.PathLike, *,
                threads: int = 1, overwrite: bool = False, **options) -> dict[str, Any]:
    """Build an index of ``backend`` from ``inputs`` (one or more directories) into ``index``.

    ``options`` are the backend's build options (:mod:`pyserini_splare.backends`); an unknown one or a
    value out of its limits is a UsageError, raised before any work. Returns the index metadata.
    """
    b = get_backend(backend)
    b.check_options("build", options, complete=False)  # the builder checks them too; here nothing has been read yet
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    inputs = [os.fspath(p) for p in inputs]
    if not inputs:
        raise UsageError("no input directory given")
    if len(inputs) > 1 and not b.takes_shards:
        raise UsageError(f"the {b.name} backend takes one input folder, got {len(inputs)}")
    build = load_callable(BUILDERS[b.name])
    return build(inputs, os.fspath(index), threads=threads, overwrite=overwrite, **options)
