"""The sparse vector: the one type that crosses stage borders (encoders -> writer, queries -> searchers).

Feature ids are int64 sorted ascending, weights float32 (model outputs, before quantization). Pruning
(Top-K as in the SPLARE paper's pooled setting, mass pruning as in MILCO) is defined on it so that every
encoder and ``encode --prune-from`` prune the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np


@dataclass(frozen=True)
class SparseVector:
    """A sparse vector: ``ids`` (int64, strictly increasing) and ``weights`` (float32, same length)."""

    ids: np.ndarray
    weights: np.ndarray

    def __post_init__(self):
        ids = np.ascontiguousarray(self.ids, dtype=np.int64)
        w = np.ascontiguousarray(self.weights, dtype=np.float32)
        if ids.ndim != 1 or w.shape != ids.shape:
            raise ValueError(f"ids and weights must be 1-D of equal length, got {ids.shape} and {w.shape}")
        if ids.size > 1 and not np.all(ids[1:] > ids[:-1]):
            order = np.argsort(ids, kind="stable")
            ids, w = ids[order], w[order]
            if np.any(ids[1:] == ids[:-1]):
                raise ValueError("duplicate feature ids in a sparse vector")
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "weights", w)

    @classmethod
    def from_dense(cls, dense: np.ndarray, threshold: float = 0.0) -> "SparseVector":
        """Keep the entries of a 1-D array that are strictly above ``threshold``."""
        dense = np.asarray(dense)
        (nz,) = np.nonzero(dense > threshold)
        return cls(nz.astype(np.int64), dense[nz].astype(np.float32))

    @classmethod
    def from_dict(cls, mapping: Mapping[int, float]) -> "SparseVector":
        ids = np.fromiter(mapping.keys(), dtype=np.int64, count=len(mapping))
        w = np.fromiter(mapping.values(), dtype=np.float32, count=len(mapping))
        return cls(ids, w)

    @property
    def nnz(self) -> int:
        return int(self.ids.size)

    def __len__(self) -> int:
        return self.nnz

    def to_dict(self) -> dict[int, float]:
        return {int(i): float(w) for i, w in zip(self.ids, self.weights)}

    def to_dense(self, size: int) -> np.ndarray:
        out = np.zeros(size, dtype=np.float32)
        out[self.ids] = self.weights
        return out

    def nonzero(self) -> "SparseVector":
        keep = self.weights != 0
        return self if keep.all() else SparseVector(self.ids[keep], self.weights[keep])

    def topk(self, k: int) -> "SparseVector":
        """The ``k`` largest weights (ties broken by the smaller id); ``k <= 0`` keeps everything."""
        if k <= 0 or self.nnz <= k:
            return self
        w = self.weights + np.float32(0)  # -0.0 -> 0.0
        if w.min() >= 0 and self.ids[-1] < 2**32:
            # One int64 key per entry, smaller = kept first: a non-negative float32's bits order like the
            # float, so (max - bits) << 32 | id sorts by weight descending, then id ascending; the k
            # smallest keys by a partition (O(n)) instead of a two-key lexsort.
            key = ((np.int64(0x7F800000) - w.view(np.int32)).astype(np.int64) << 32) | self.ids
            order = np.argpartition(key, k - 1)[:k]
        else:
            # lexsort: last key is primary -> weight descending, then id ascending.
            order = np.lexsort((self.ids, -self.weights))[:k]
        order.sort()
        return SparseVector(self.ids[order], self.weights[order])

    def mass_prune(self, mass: float) -> "SparseVector":
        """Keep the fewest largest weights whose sum reaches ``mass`` (0 < mass <= 1) of the total."""
        if not 0 < mass <= 1:
            raise ValueError(f"mass must be in (0, 1], got {mass}")
        if self.nnz == 0:
            return self
        order = np.lexsort((self.ids, -self.weights))
        csum = np.cumsum(self.weights[order], dtype=np.float64)
        n = int(np.searchsorted(csum, mass * csum[-1] - 1e-12) + 1)
        keep = np.sort(order[: min(n, self.nnz)])
        return SparseVector(self.ids[keep], self.weights[keep])

    def dot(self, other: "SparseVector") -> float:
        common, ia, ib = np.intersect1d(self.ids, other.ids, assume_unique=True, return_indices=True)
        return float(np.dot(self.weights[ia].astype(np.float64), other.weights[ib].astype(np.float64)))
