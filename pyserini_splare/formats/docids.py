"""Docid tables: every document's id in an index's internal order, one writer and one reader.

``docids.npy`` (a fixed-width unicode array, read with ``allow_pickle=False``) maps a whole result list to
ids in one numpy step; faiss keeps ``docids.txt`` instead, written while its vectors stream in
(:func:`docid_lines`), since a fixed-width array of 10M ids would be built in memory at the end.
"""

from __future__ import annotations

import os
import contextlib
from pathlib import Path
from typing import Callable, Iterator, Sequence

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
    """``index_dir/docids.npy`` as a unicode array; ``count``: the number of documents the index holds.

    A missing table is None when not ``required`` (a Lucene index built before the table existed), else
    a UsageError; an unreadable table or one of the wrong length is a UsageError naming the file."""
    path = Path(index_dir) / DOCIDS_FILE
    if not path.is_file():
        if required:
            raise UsageError(f"{path}: missing docid table (rebuild the index)")
        return None
    try:
        ids = np.load(path, allow_pickle=False)
    except Exception as e:  # truncated or corrupt npy: zip/format errors of every kind
        raise UsageError(f"{path}: unreadable docid table ({str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}); "
                         "rebuild the index") from None
    if ids.ndim != 1 or ids.dtype.kind != "U":
        raise UsageError(f"{path}: not a docid table (an array of {ids.dtype} of shape {ids.shape})")
    if count is not None and len(ids) != count:
        raise UsageError(f"{path}: {len(ids)} ids for an index of {count} documents "
                         "(the index was changed after it was built)")
    return ids


DOCID_LINES_FILE = "docids.txt"


@contextlib.contextmanager
def docid_lines(index_dir: str | os.PathLike) -> Iterator[Callable[[Sequence[str]], None]]:
    """Write ``index_dir/docids.txt`` a block at a time: yields ``add(ids)``. Ids hold no line break
    (the vectors reader checks ids)."""
    with open(Path(index_dir) / DOCID_LINES_FILE, "w", encoding="utf-8") as f:
        yield lambda ids: f.write("".join(f"{d}\n" for d in ids))


def read_docid_lines(index_dir: str | os.PathLike, count: int) -> list[str]:
    """``index_dir/docids.txt`` as a list; ``count``: the vectors the index holds (a mismatch is a UsageError)."""
    path = Path(index_dir) / DOCID_LINES_FILE
    try:
        ids = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: cannot read the docid table ({type(e).__name__}); rebuild the index") from None
    if len(ids) != count:
        raise UsageError(f"{index_dir}: {len(ids)} docids for {count} vectors")
    return ids
