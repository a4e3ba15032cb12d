"""Quantization: the one pair that turns model weights into the integer impacts every index stores.

``quantize(w, scale) = round(w * scale)`` (half to even), ``dequantize(q, scale) = q / scale``; every stage
goes through this pair (docs/vectors.md, "Quantization"). Weights on disk are integers because Anserini
truncates float impacts silently (2.6 -> 2, 0.4 -> term dropped).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .._errors import UsageError
from .sparse import SparseVector

# Why 100 (two decimals of log1p(relu(.)) weights, Pyserini's SPLADE query scale) and why 65,504 (float16's
# largest finite value: Seismic stores weights as float16; Lucene's and exact's limits are far above):
# docs/vectors.md, "Quantization".
DEFAULT_QUANT_SCALE = 100.0
# The largest integer impact any backend takes, documents and queries alike (:func:`check_impacts`).
MAX_IMPACT = 65_504


def check_scale(scale: float) -> float:
    """A quantization scale: a positive finite number (ValueError otherwise)."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.floating, np.integer)) \
            or not scale > 0 or not math.isfinite(scale):
        raise ValueError(f"quantization scale must be a positive finite number, got {scale!r}")
    return float(scale)


def impact_bound_error(value, where: str, what: str = "weight") -> UsageError:
    """The one message for an impact beyond :data:`MAX_IMPACT` (raised by every reader and writer)."""
    shown = f"{value:g}" if isinstance(value, float) else (str(value) if abs(value) < 10**30 else "> 1e30")
    return UsageError(f"{where}: {what} {shown} exceeds the largest integer impact {MAX_IMPACT:,} (Seismic "
                      "stores float16 weights, Lucene repeats a term once per unit of weight): lower the "
                      "quantization scale")


def check_impacts(q: np.ndarray, where: str, what: str = "weight") -> np.ndarray:
    """Refuse integer impacts above :data:`MAX_IMPACT` (one line naming ``where``); returns ``q``."""
    if q.size and q.max() > MAX_IMPACT:
        raise impact_bound_error(q.max().item(), where, what)
    return q


@dataclass
class QuantStats:
    """What rounding to integers lost, accumulated over many vectors."""

    scale: float
    n_weights: int = 0
    n_zeroed: int = 0  # positive weights that rounded to 0 (the term disappears from the index)
    max_rel_error: float = 0.0  # max |q/scale - w| / w over the weights that were kept
    sum_rel_error: float = 0.0  # the same summed, for the mean a person reads (one outlier sets the max)

    def update(self, w: np.ndarray, q: np.ndarray, kept: np.ndarray | None = None) -> None:
        """Add the weights ``w`` and their quantized ``q`` (``kept = q > 0`` when the caller has it)."""
        if kept is None:
            kept = q > 0
        n_kept = int(np.count_nonzero(kept))
        self.n_weights += int(w.size)
        self.n_zeroed += int(w.size) - n_kept
        if n_kept:
            # Every weight kept (the usual case): no masked copies (a few us per document, millions of them).
            wk, qk = (w, q) if n_kept == w.size else (w[kept], q[kept])
            wk = wk.astype(np.float64)
            rel = np.abs(qk / self.scale - wk) / wk
            self.max_rel_error = max(self.max_rel_error, float(np.max(rel)))
            self.sum_rel_error += float(np.sum(rel))

    def to_meta(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "weights": self.n_weights,
            "zeroed": self.n_zeroed,
            "zeroed_fraction": self.n_zeroed / self.n_weights if self.n_weights else 0.0,
            "max_rel_error": self.max_rel_error,
            # 4 significant digits: the batched and the per-document writers sum in different orders, and
            # meta.json must not depend on which one ran.
            "mean_rel_error": float(f"{self.sum_rel_error / (self.n_weights - self.n_zeroed):.4g}")
            if self.n_weights > self.n_zeroed else 0.0,
        }


def quant_summary(m: Mapping[str, Any]) -> str:
    """What rounding did, for a person (``meta.json``'s ``stats.quantization``): rounding to the nearest
    quantum moves no kept weight by more than half a quantum, so the bound is the thing to know; the
    maximum relative error (in meta.json) is not, being ~1.0 as soon as one weight sits just above half
    a quantum (0.00501 becomes 0.01 at x100), which happens in nearly every corpus. What rounding did lose: the weights
    below half a quantum, rounded to 0 and left out of the index."""
    scale = m["scale"]
    mean = f", {100 * m['mean_rel_error']:.2f}% off on average" if "mean_rel_error" in m else ""
    return (f"quantization x{scale:g}: {m['weights']:,} weights, every kept one within half a quantum "
            f"({0.5 / scale:g}) of its float value{mean}; {m['zeroed']:,} ({100 * m['zeroed_fraction']:.3f}%) "
            f"below half a quantum rounded to 0 and left out")


def quantize(weights: np.ndarray, scale: float) -> np.ndarray:
    """``round(w * scale)`` as int64 (round half to even, like numpy). Non-finite or huge products are
    returned clipped above :data:`MAX_IMPACT` so that :func:`check_impacts` names them instead of an
    integer cast wrapping around."""
    scale = check_scale(scale)
    x = np.rint(np.asarray(weights, dtype=np.float64) * scale)
    if x.size and not (x.max() <= MAX_IMPACT):  # NaN compares False: caught here too
        x = np.where(np.isnan(x), MAX_IMPACT + 1, np.minimum(x, MAX_IMPACT + 1))
    return x.astype(np.int64)


def dequantize(q: np.ndarray, scale: float) -> np.ndarray:
    """``q / scale`` as float64: the weights that quantize back to ``q`` exactly at the same scale."""
    return np.asarray(q, dtype=np.float64) / check_scale(scale)


def quantize_vector(vec: SparseVector, scale: float, stats: QuantStats | None = None,
                    where: str = "vector") -> tuple[np.ndarray, np.ndarray]:
    """Quantized ``(ids, int weights)`` with zeros removed, bounded by :data:`MAX_IMPACT` (UsageError
    naming ``where`` beyond it); updates ``stats`` if given."""
    w = vec.weights
    if stats is not None and w.size and stats.scale == scale:
        # The usual document, in fewer numpy calls (millions of documents, ~400 weights each): every
        # weight within the bound and none rounded to 0. Anything else takes the general path below.
        w64 = w.astype(np.float64)
        x = np.rint(w64 * scale)
        if x.max() <= MAX_IMPACT and x.min() > 0:
            rel = np.abs(x / scale - w64) / w64
            stats.n_weights += int(w.size)
            stats.max_rel_error = max(stats.max_rel_error, float(np.max(rel)))
            stats.sum_rel_error += float(np.sum(rel))
            return vec.ids, x.astype(np.int64)
    q = check_impacts(quantize(w, scale), where)
    keep = q > 0
    if stats is not None:
        stats.update(vec.weights, q, keep)
    if q.size and q.min() > 0:  # nothing rounded to 0: no masked copies
        return vec.ids, q
    return vec.ids[keep], q[keep]
