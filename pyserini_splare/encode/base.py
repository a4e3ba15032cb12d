"""Encoder interfaces shared by every model (Pyserini's ``encode/base.py`` in spirit).

A sparse encoder returns float :class:`~pyserini_splare.vectors.SparseVector`s in its feature space
(pruning is applied by the caller, quantization once, in the vectors writer); a dense encoder returns an
``(n, dim)`` float32 array.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Literal, Sequence

import numpy as np

from ..vectors import FeatureSpace, SparseVector

Kind = Literal["query", "doc"]

def check_kind(kind: str) -> None:
    """Every encoder's ``encode`` takes ``kind`` in ("query", "doc")."""
    if kind not in ("query", "doc"):
        raise ValueError(f"kind must be 'query' or 'doc', got {kind!r}")


class SparseEncoder(ABC):
    """Texts -> float sparse vectors in ``self.space``.

    ``spec()`` is recorded in meta.json and must let ``load_encoder`` rebuild the same encoder.
    """

    space: FeatureSpace

    @abstractmethod
    def encode(self, texts: Sequence[str], kind: Kind = "doc") -> list[SparseVector]:
        """Encode a batch; returns one unpruned float SparseVector per text."""

    @abstractmethod
    def spec(self) -> dict[str, Any]:
        """A JSON-serialisable description: {"type": "splade", "path": ..., ...}."""


class DenseEncoder(ABC):
    dim: int

    @abstractmethod
    def encode(self, texts: Sequence[str], kind: Kind = "doc") -> np.ndarray:
        """Encode a batch; returns (len(texts), dim) float32."""

    @abstractmethod
    def spec(self) -> dict[str, Any]:
        ...
