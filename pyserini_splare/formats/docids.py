"""Docid tables: every document's id in an index's internal order, one writer and one reader.

``docids.npy`` (a fixed-width unicode array, read with ``allow_pickle=False``) maps a whole result list to
ids in one numpy step. Every backend that numbers its documents itself (Lucene impact, exact, SINDI, faiss)
keeps its ids here. The array is built in memory when written (10M UUIDs of 36 characters, 4 bytes each:
1.4 GB, small beside the indexes it names) and memory-mapped when read (docs/dense.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .._errors import UsageError

DOCIDS_FILE = "docids.npy"


def write_docids(index_dir: str | os.PathLike, ids: Sequence[str] | np.ndarray) -> int:
    """Write ``index_dir/docids.npy``; returns the number of ids."""
    arr = np.asarray(ids, dtype=str)
    if arr.ndim != 1:
        raise ValueError(f"docids must be one-dimensional, got shape {arr.shape}")
    with open(Path(index_dir) / DOCIDS_FILE, "wb") as f:
        np.save(f, arr, allow_pickle=False)
    return len(arr)


def read_docids(index_dir: str | os.PathLike, count: int | None = None, *, required: bool = True) -> np.ndarray | None:
    """``index_dir/docids.npy`` as a read-only, memory-mapped unicode array; ``count``: the number of
    documents the index holds.

    A missing table is None when not ``required`` (a Lucene index built before the table existed), else
    a UsageError; an unreadable table or one of the wrong length is a UsageError naming the file."""
    path = Path(index_dir) / DOCIDS_FILE
    if not path.is_file():
        if required:
            raise UsageError(f"{path}: missing docid table (rebuild the index)")
        return None
    try:
        # Memory-mapped: a search process reads only the pages of the ids its hits name, and the
        # processes of `serve --workers` share them through the page cache (10M UUIDs: 1.4 GB otherwise).
        ids = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as e:  # truncated or corrupt npy: zip/format errors of every kind
        raise UsageError(f"{path}: unreadable docid table ({str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}); "
                         "rebuild the index") from None
    if ids.ndim != 1 or ids.dtype.kind != "U":
        raise UsageError(f"{path}: not a docid table (an array of {ids.dtype} of shape {ids.shape})")
    if count is not None and len(ids) != count:
        raise UsageError(f"{path}: {len(ids)} ids for an index of {count} documents "
                         "(the index was changed after it was built)")
    return ids
