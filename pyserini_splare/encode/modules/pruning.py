"""Pruning of pooled vectors: Top-K, mass, or none (``forward(pooled (B, V), kind) -> (B, V)``).

Top-K breaks ties by the smaller feature id and mass keeps the fewest largest weights reaching the fraction,
as ``SparseVector.topk`` / ``mass_prune`` do. The result is ``pooled * keep`` with a 0/1 mask, so gradients
flow to the kept weights only (Top-K pooling in training, docs/training.md); a pruning model saves
``pruning.json`` and applies it again when loaded.
"""

from __future__ import annotations

from typing import Literal

import torch

from .config import ConfigModule

Mode = Literal["none", "topk", "mass"]
MODES = ("none", "topk", "mass")


class Pruning(ConfigModule, torch.nn.Module):
    config_keys = ("mode", "k_query", "k_doc", "mass")
    config_file = "pruning.json"

    def __init__(self, mode: Mode = "none", k_query: int = 0, k_doc: int = 0, mass: float | None = None):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        for name, k in (("k_query", k_query), ("k_doc", k_doc)):
            if isinstance(k, bool) or not isinstance(k, int):  # int(2.5) would silently become 2
                raise ValueError(f"{name} must be an integer, got {k!r}")
        if mode == "topk" and (int(k_query) < 0 or int(k_doc) < 0):
            raise ValueError(f"top-k sizes must be >= 0 (0 keeps all), got {k_query}/{k_doc}")
        if mode == "mass" and not (mass is not None and 0 < float(mass) <= 1):
            raise ValueError(f"mass must be in (0, 1], got {mass}")
        self.mode, self.k_query, self.k_doc = mode, int(k_query), int(k_doc)
        self.mass = float(mass) if mass is not None else None

    @property
    def active(self) -> bool:
        """Whether :meth:`forward` can change a vector (Top-K with 0 on both sides keeps everything)."""
        return self.mode == "mass" or (self.mode == "topk" and (self.k_query > 0 or self.k_doc > 0))

    def forward(self, pooled, kind: str = "doc"):
        if self.mode == "none":
            return pooled
        # Stable descending sort: equal weights keep id order, so the smaller id wins a tie.
        order = torch.sort(pooled.detach(), dim=-1, descending=True, stable=True).indices
        if self.mode == "topk":
            k = self.k_query if kind == "query" else self.k_doc
            if k <= 0 or k >= pooled.shape[-1]:
                return pooled
            n = torch.full((pooled.shape[0], 1), k, device=pooled.device)
        else:
            w = torch.gather(pooled.detach(), -1, order).double()
            csum = w.cumsum(-1)
            target = self.mass * csum[:, -1:] - 1e-12
            n = torch.searchsorted(csum, target) + 1
        rank = torch.arange(pooled.shape[-1], device=pooled.device).expand_as(pooled)
        keep = torch.zeros_like(pooled, dtype=torch.bool).scatter_(-1, order, rank < n)
        return pooled * keep
