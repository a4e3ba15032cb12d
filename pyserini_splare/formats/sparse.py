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


_F32_MAX = float(np.finfo(np.float32).max)


def prune_segments(ids: np.ndarray, weights: np.ndarray, bounds: np.ndarray, *, topk: int = 0,
                   mass: float | None = None) -> np.ndarray | None:
    """What ``SparseVector.mass_prune(mass)`` then ``.topk(topk)`` keep, for many vectors at once: the
    keep mask over concatenated vectors, vector ``j`` being ``ids[bounds[j]:bounds[j+1]]`` (ids
    distinct within a vector) with float32 ``weights``. None when a weight is not positive and finite
    or an id is beyond 2^32 (the caller then prunes vector by vector). How (one sort of packed
    (weight, id) keys per bucket of similar lengths): docs/vectors.md, "Speed"."""
    ids = np.asarray(ids, dtype=np.int64)
    w = np.asarray(weights, dtype=np.float32)
    bounds = np.asarray(bounds, dtype=np.int64)
    keep = np.ones(ids.size, dtype=bool)
    if mass is not None and not 0 < mass <= 1:
        raise ValueError(f"mass must be in (0, 1], got {mass}")
    if ids.size == 0 or (topk <= 0 and mass is None):
        return keep
    if not (w.min() > 0 and w.max() <= _F32_MAX) or ids.min() < 0 or ids.max() >= 2**32:
        return None
    n = np.diff(bounds)
    todo = np.flatnonzero(n > (1 if mass is not None else topk))
    if todo.size == 0:
        return keep
    shift = max(int(ids.max()).bit_length(), 1)
    key = ((np.int64(0x7F800000) - w.view(np.int32)).astype(np.int64) << shift) | ids
    # A pad sorts after every entry and decodes to weight 0.0 (bits 0): it adds nothing to a sum.
    pad = (np.int64(0x7F800000) << shift) | ((1 << shift) - 1)
    lens = n[todo]
    # Buckets of lengths within an eighth of their power of two (~8 buckets per doubling), each row
    # padded to its bucket's longest: <= 1/8 padding, none when the lengths are equal.
    step = 1 << np.maximum(np.log2(lens).astype(np.int64) - 3, 0)
    bucket = -(-lens // step) * step
    for bk in np.unique(bucket).tolist():
        sel = bucket == bk
        rows, length, starts = todo[sel], lens[sel], bounds[todo[sel]]
        wd = int(length.max())
        at = starts[:, None] + np.arange(wd)
        whole = length.min() == wd and rows.size * wd == ids.size  # every entry here, vectors of one length
        if whole:
            valid, k2 = None, key.reshape(rows.size, wd)
        elif length.min() == wd:  # no padding
            valid, k2 = None, key[at]
        else:
            valid = at < (starts + length)[:, None]
            at[~valid] = 0
            k2 = np.where(valid, key[at], pad)
        ranked = np.sort(k2, axis=1)  # the pads last
        m = length
        if mass is not None:
            rw = (np.int64(0x7F800000) - (ranked >> shift)).astype(np.int32).view(np.float32)
            csum = np.cumsum(rw, axis=1, dtype=np.float64)  # a pad adds 0: the row ends at its total
            # mass_prune: searchsorted(csum, mass * total - 1e-12) + 1 = (entries below the target) + 1;
            # a pad's sum is the total, never below the target (mass <= 1).
            below = np.count_nonzero(csum < (mass * csum[:, -1] - 1e-12)[:, None], axis=1)
            m = np.minimum(below + 1, length)
        if topk > 0:
            m = np.minimum(m, topk)
        last = ranked[np.arange(rows.size), m - 1]  # the m-th ranked key: keys are distinct in a vector
        kept = k2 <= last[:, None]
        if whole:
            keep = kept.ravel()
        elif valid is None:
            keep[at] = kept
        else:
            keep[at[valid]] = kept[valid]
    return keep


def parse_pruning(spec: str) -> tuple[int, float | None]:
    """``(topk, mass)`` of a pruning spec: ``topk:K`` (K >= 1), ``mass:F`` (0 < F <= 1), or both joined by a
    comma (``mass:0.9,topk:400``: mass first, then Top-K, as the vectors writer prunes). ValueError names
    the allowed forms."""
    topk, mass = 0, None
    forms = "topk:K (K >= 1), mass:F (0 < F <= 1) or mass:F,topk:K"
    parts = [p.strip() for p in str(spec).split(",")]
    if not parts or any(":" not in p for p in parts):
        raise ValueError(f"pruning must be {forms}, got {spec!r}")
    seen = set()
    for p in parts:
        name, value = (x.strip() for x in p.split(":", 1))
        if name in seen or name not in ("topk", "mass"):
            raise ValueError(f"pruning must be {forms}, got {spec!r}")
        seen.add(name)
        try:
            if name == "topk":
                topk = int(value)
                ok = topk >= 1
            else:
                mass = float(value)
                ok = 0 < mass <= 1
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"pruning must be {forms}, got {spec!r}")
    return topk, mass


def prune(vec: SparseVector, topk: int = 0, mass: float | None = None) -> SparseVector:
    """Mass pruning (MILCO) first, then Top-K (the SPLARE paper's pooled setting): the one order every
    stage prunes in (the vectors writer, ``index --prune-docs``, ``search --prune-queries``)."""
    if mass is not None:
        vec = vec.mass_prune(mass)
    if topk > 0:
        vec = vec.topk(topk)
    return vec
