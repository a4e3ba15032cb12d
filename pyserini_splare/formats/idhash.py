"""The one document-id hash and duplicate-id set.

Duplicate ids are found from 64-bit BLAKE2b hashes of the ids (8 bytes per document, sorted once at
the end), never from a set of strings: a Python set of 10M ids (NeuCLIR1) costs ~700 MB, an int64
array 80 MB. Two ids share a hash with probability ~n^2/2^65 (3e-6 at 10M documents); a collision is
reported as such, never silently merged, because the caller then rescans for the actual repeated id.
"""

from __future__ import annotations

import hashlib
from array import array
from typing import Iterable

import numpy as np


def id_hash(docid: str) -> int:
    """Signed 64-bit hash of an id (little-endian BLAKE2b-64 of its UTF-8 bytes)."""
    return int.from_bytes(hashlib.blake2b(docid.encode(), digest_size=8).digest(), "little", signed=True)


class IdHashSet:
    """Collects id hashes (8 bytes each) and reports the repeated ones.

    ``add`` / ``extend`` are O(1) appends; :meth:`duplicates` sorts once in place and compares
    neighbours (np.unique with counts would hold three such arrays at once).
    """

    def __init__(self):
        self._chunks: list[np.ndarray] = []
        self._cur = array("q")

    def add(self, docid: str) -> None:
        self._cur.append(id_hash(docid))

    def extend_hashes(self, hashes: np.ndarray | Iterable[int]) -> None:
        self._flush()
        self._chunks.append(np.asarray(hashes, dtype=np.int64))

    def _flush(self) -> None:
        if len(self._cur):
            self._chunks.append(np.frombuffer(self._cur, dtype=np.int64).copy())
            self._cur = array("q")

    def to_array(self) -> np.ndarray:
        """Every hash added, in order (int64)."""
        self._flush()
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int64)

    def __len__(self) -> int:
        return sum(len(c) for c in self._chunks) + len(self._cur)

    def duplicates(self) -> set[int]:
        """The hashes seen more than once (empty when every id is distinct)."""
        h = self.to_array()
        self._chunks = [h]
        s = np.sort(h)
        same = s[1:] == s[:-1]
        return set(s[1:][same].tolist()) if same.any() else set()


def find_repeated(items: Iterable[tuple[str, str]], hashes: set[int]) -> str | None:
    """Rescan ``(id, where)`` pairs for the first id whose hash is in ``hashes`` and that really
    repeats; a message naming both places, or None (a hash collision between distinct ids)."""
    seen: dict[str, str] = {}
    for docid, where in items:
        if id_hash(docid) in hashes:
            if docid in seen:
                return f"{where}: duplicate document id {docid!r} (first at {seen[docid]})"
            seen[docid] = where
    return None
