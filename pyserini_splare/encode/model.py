"""The composed sparse encoder: trunk -> head -> pooling -> pruning, one ``torch.nn.Module``.

Every sparse kind is this class with another configuration, built by its kind's loader (:mod:`.kinds`).
The composition table, the API training builds on, and how pruning is saved: docs/encoders.md,
"How encoders are composed". No module wraps its computation in ``torch.no_grad``; :meth:`SparseModel.encode`
runs under ``torch.inference_mode``.
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .._errors import UsageError
from .._lazy import load_callable
from ..vectors import FeatureSpace, SparseVector
from .base import Kind, SparseEncoder, check_kind
from .batching import length_sorted_batches
from .kinds import ENCODERS
from .modules.pruning import Pruning

DEFAULT_BATCH_SIZE = 32


def rows_to_vectors(pooled) -> list[SparseVector]:
    """One SparseVector per row of a (B, V) non-negative tensor, zeros dropped."""
    dense = pooled.detach().float().cpu().numpy()
    rows, cols = np.nonzero(dense > 0)
    weights = dense[rows, cols]
    bounds = np.searchsorted(rows, np.arange(dense.shape[0] + 1))
    return [SparseVector(cols[a:b].astype(np.int64), weights[a:b].astype(np.float32))
            for a, b in zip(bounds[:-1], bounds[1:])]


def saved_pruning(path: str | os.PathLike):
    """The :class:`~.modules.pruning.Pruning` a checkpoint directory records (``pruning.json``), or None."""
    return Pruning.load(path) if Pruning.has_config(path) else None


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to do
        return None


def release_freed_memory() -> None:
    """Hand the heap memory freed by a batch back to the OS (glibc ``malloc_trim``): activations of
    different sizes fragment glibc's kept heap, and the resident set would creep up over a corpus
    (docs/benchmarks.md, "Encode peak memory")."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


class SparseModel(torch.nn.Module, SparseEncoder):
    """trunk -> head -> pooling -> pruning. Build through a kind's loader (``load_encoder``)."""

    def __init__(self, trunk, head, pooling, pruning=None, *, space: FeatureSpace, kind: str, path: str,
                 max_length_query: int, max_length_doc: int, settings: Any = None,
                 overrides: Mapping[str, int] | None = None, batch_size: int = DEFAULT_BATCH_SIZE):
        super().__init__()
        composed = sorted(k for k, v in ENCODERS.items() if v.describe)
        if kind not in composed:
            raise ValueError(f"kind must be one of {composed}, got {kind!r}")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        for name, n in (("max_length_query", max_length_query), ("max_length_doc", max_length_doc)):
            if int(n) <= 0:
                raise ValueError(f"{name} must be positive, got {n}")
        self.trunk, self.head, self.pooling = trunk, head, pooling
        # Every kind's loader passes its checkpoint directory as ``path``: a pruning saved there applies.
        self.pruning = pruning if pruning is not None else saved_pruning(path)
        self.space, self.kind, self.path, self.settings = space, kind, path, settings
        self.max_length_query, self.max_length_doc = int(max_length_query), int(max_length_doc)
        self.overrides = dict(overrides or {})
        self.batch_size = int(batch_size)

    # ---- tokenization -------------------------------------------------------------------------

    @property
    def tokenizer(self):
        return self.trunk.tokenizer

    @property
    def device(self):
        return self.trunk.device

    def max_length(self, kind: Kind) -> int:
        check_kind(kind)
        return self.max_length_query if kind == "query" else self.max_length_doc

    def _token_ids(self, texts: Sequence[str], kind: Kind) -> dict[str, list]:
        return self.tokenizer(list(texts), truncation=True, max_length=self.max_length(kind),
                              return_special_tokens_mask=True, return_token_type_ids=False)

    def _collate(self, enc: Mapping[str, list], idx: Sequence[int]) -> dict[str, torch.Tensor]:
        rows = [{k: enc[k][i] for k in ("input_ids", "attention_mask", "special_tokens_mask")} for i in idx]
        batch = self.tokenizer.pad(rows, padding="longest", return_tensors="pt")
        dev = self.device
        return {k: batch[k].to(dev) for k in ("input_ids", "attention_mask", "special_tokens_mask")}

    def tokenize(self, texts: Sequence[str], kind: Kind = "doc") -> dict[str, torch.Tensor]:
        """Padded ``input_ids``, ``attention_mask``, ``special_tokens_mask`` on the model's device."""
        texts = list(texts)
        return self._collate(self._token_ids(texts, kind), range(len(texts)))

    # ---- forward --------------------------------------------------------------------------------

    def forward(self, texts_or_features, kind: Kind = "doc"):
        """Texts, or :meth:`tokenize`'s features -> pooled (and pruned) (B, V) float32 weights."""
        check_kind(kind)
        feats = texts_or_features
        if isinstance(feats, (list, tuple)):
            feats = self.tokenize(feats, kind)
        hidden = self.trunk(feats["input_ids"], feats["attention_mask"])
        pooled = self.pooling(self.head, hidden, feats)
        return self.pruning(pooled, kind) if self.pruning is not None else pooled

    def encode(self, texts: Sequence[str], kind: Kind = "doc") -> list[SparseVector]:
        """Float SparseVectors in input order; batches of ``batch_size`` sorted by token length."""
        check_kind(kind)
        texts = list(texts)
        if not texts:
            return []
        enc = self._token_ids(texts, kind)
        out: list[SparseVector | None] = [None] * len(texts)
        for idx in length_sorted_batches([len(x) for x in enc["input_ids"]], self.batch_size):
            feats = self._collate(enc, idx)
            try:
                with torch.inference_mode():
                    pooled = self(feats, kind)
            except torch.OutOfMemoryError:
                raise UsageError(f"out of memory encoding a batch of {len(idx)} texts of "
                                 f"{feats['input_ids'].shape[1]} tokens: lower --batch-size (or --max-length)") from None
            for i, vec in zip(idx, rows_to_vectors(pooled)):
                out[i] = vec
            del pooled, feats
            if self.device.type == "cpu":
                release_freed_memory()
        return out  # type: ignore[return-value]

    # ---- description, saving, loading -------------------------------------------------------------

    def spec(self) -> dict[str, Any]:
        from .licence import checkpoint_licence

        spec = load_callable(ENCODERS[self.kind].describe)(self)
        lic = checkpoint_licence(self.path)
        if lic:
            spec["license"] = lic  # the checkpoint's stated licence (formats.licence: the notice it triggers)
        if self.overrides:
            spec["overrides"] = dict(self.overrides)  # lengths set by a flag, not the model's own
        return spec

    def pooling_meta(self) -> dict[str, Any]:
        """What meta.json's ``pooling`` records about the model (the writer adds its own pruning)."""
        meta = {"method": self.pooling.method, **{k: v for k, v in self.pooling.config().items() if k != "method"}}
        if self.pruning is not None:
            meta["model_pruning"] = self.pruning.config()
        return meta

    def save(self, directory: str | os.PathLike, **options) -> str:
        """Write a checkpoint directory of this kind that ``load_encoder(directory)`` loads (``options``:
        the kind's, e.g. SPLARE's ``copy_trunk``)."""
        from .modules.trunk import quiet_transformers

        directory = os.fspath(directory)
        os.makedirs(directory, exist_ok=True)
        with quiet_transformers():  # transformers' "Writing model shards" bar is not ours to print
            saver = ENCODERS[self.kind].saver
            if saver is None:
                raise UsageError(f"encoder kind {self.kind!r} cannot be saved")
            load_callable(saver)(self, directory, **options)
        if self.pruning is not None and self.pruning.active:
            self.pruning.save_config(directory)
        elif Pruning.has_config(directory):  # saved over a pruned checkpoint: its pruning is no longer this model's
            os.remove(os.path.join(directory, Pruning.config_file))
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, **options) -> SparseModel:
        from .specs import load_encoder

        model = load_encoder(os.fspath(directory), **options)
        if not isinstance(model, cls):
            raise UsageError(f"{directory}: not a sparse model checkpoint")
        return model
