"""BERT-style SPLADE: a masked-LM head over the WordPiece vocabulary, pooled by max log(1 + ReLU).

SPLADE (Formal et al., SIGIR 2021; SPLADE v2/v3, arXiv 2109.10086 / 2403.06789): for token logits
w_ij over the vocabulary, the document weight of term j is ``max_i log(1 + ReLU(w_ij))`` over the
real (unpadded) tokens i. Covers ``naver/splade-v3`` and its family (same encoder for queries and
documents) and SPLADE-tiny. Features are WordPiece strings (``VocabSpace``), as Pyserini's SPLADE
indexes use them; tokens unsafe as pretokenized terms become ``w{id}``.

This module imports torch and transformers: it is only imported through ``ENCODERS``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .._cli import UsageError
from ..vectors import SparseVector, VocabSpace
from ._base import Kind, SparseEncoder, check_kind
from .pooling import max_log1p_relu

DEFAULT_BATCH_SIZE = 32
# BERT's learned position embeddings stop at 512: longer requests are clamped to what the model has.
BERT_MAX_LENGTH = 512

DTYPES = {"fp32": "float32", "float32": "float32", "fp16": "float16", "float16": "float16",
          "bf16": "bfloat16", "bfloat16": "bfloat16"}


def torch_dtype(name: str | None):
    """``bf16|fp16|fp32`` (or torch names) -> torch dtype; None -> float32."""
    if name is None:
        return torch.float32
    if isinstance(name, torch.dtype):
        return name
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(sorted(DTYPES))}, got {name!r}")
    return getattr(torch, DTYPES[name])


def vocab_terms(tokenizer, size: int) -> list[str]:
    """Token strings by id for ``range(size)`` (ids beyond the tokenizer, if the head is padded, become '')."""
    toks = tokenizer.convert_ids_to_tokens(list(range(min(size, len(tokenizer)))))
    toks = [t if isinstance(t, str) else "" for t in toks]
    return toks + [""] * (size - len(toks))


def sparse_rows(pooled: "torch.Tensor") -> list[SparseVector]:
    """One SparseVector per row of a (batch, features) non-negative tensor, zeros dropped."""
    dense = pooled.float().cpu().numpy()
    rows, cols = np.nonzero(dense)
    weights = dense[rows, cols]
    bounds = np.searchsorted(rows, np.arange(dense.shape[0] + 1))
    return [SparseVector(cols[a:b], weights[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def quiet_loading() -> None:
    """No transformers weight-loading bar when our progress bars are off (tests, logs)."""
    import os

    if os.environ.get("PYSERINI_SPLARE_PROGRESS") == "0":
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def oom_hint(e: BaseException, batch_size: int, length: int) -> UsageError:
    return UsageError(f"out of memory encoding a batch of {batch_size} texts of {length} tokens: "
                      "lower --batch-size (or --max-length)")


class SpladeEncoder(SparseEncoder):
    """``AutoModelForMaskedLM`` + masked max of log(1 + ReLU(logits)) (SPLADE's pooling).

    ``encode`` tokenizes the whole list, sorts it by token length, runs batches of ``batch_size``
    (so padding is small) and returns vectors in the input order.
    """

    def __init__(self, path: str, *, device: str = "cpu", dtype: str | None = None, max_length: int | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE, trust_remote_code: bool = False):
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if max_length is not None and max_length <= 2:
            raise ValueError(f"max_length must be > 2, got {max_length}")
        self.path, self.device, self.batch_size = str(path), torch.device(device), batch_size
        self.dtype = torch_dtype(dtype)
        local = Path(self.path).is_dir()
        quiet_loading()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=local,
                                                           trust_remote_code=trust_remote_code)
            self.model = AutoModelForMaskedLM.from_pretrained(self.path, local_files_only=local, dtype=self.dtype,
                                                              trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UsageError(f"cannot load a masked-LM SPLADE model from {self.path}: {msg}") from None
        self.model.to(self.device).eval()
        cfg = self.model.config
        limit = min(getattr(cfg, "max_position_embeddings", BERT_MAX_LENGTH) or BERT_MAX_LENGTH, BERT_MAX_LENGTH)
        self.max_length = min(max_length or limit, limit)
        self.space = VocabSpace(vocab_terms(self.tokenizer, cfg.vocab_size), name="bert-wordpiece")
        # BERT-family MLMs (SPLADE v3, SPLADE-tiny) split into trunk + `cls` head: see _forward.
        trunk = getattr(self.model, "bert", None)
        head = getattr(self.model, "cls", None)
        self._split = (trunk, head) if trunk is not None and head is not None else None

    def spec(self) -> dict[str, Any]:
        return {"type": "splade", "path": self.path, "max_length": self.max_length,
                "dtype": str(self.dtype).replace("torch.", "")}

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        enc = self.tokenizer(list(texts), truncation=True, max_length=self.max_length, add_special_tokens=True)
        return [len(ids) for ids in enc["input_ids"]]

    @torch.inference_mode()
    def _forward(self, features: list[dict]) -> "torch.Tensor":
        batch = self.tokenizer.pad(features, padding="longest", return_tensors="pt")
        ids = batch["input_ids"].to(self.device)
        mask = batch["attention_mask"].to(self.device)
        try:
            if self._split is None:
                logits = self.model(input_ids=ids, attention_mask=mask).logits
                return max_log1p_relu(logits, mask)
            trunk, head = self._split
            hidden = trunk(input_ids=ids, attention_mask=mask).last_hidden_state
            # The (tokens x vocabulary) logits dominate time and memory (30,522 floats per token): compute them
            # in one matmul over the real tokens only (padding rows dropped), then max per document before
            # log1p(relu(.)), which is monotonic: max_i log1p(relu(x_i)) = log1p(relu(max_i x_i)).
            logits = head(hidden[mask.bool()])  # (real tokens, vocabulary), documents contiguous
            lengths = mask.sum(dim=1).tolist()
            pooled = torch.stack([part.max(dim=0).values for part in logits.split(lengths)])
            return torch.log1p(torch.relu(pooled))
        except torch.OutOfMemoryError as e:
            raise oom_hint(e, ids.shape[0], ids.shape[1]) from None

    def encode(self, texts: Sequence[str], kind: Kind = "doc") -> list[SparseVector]:
        check_kind(kind)
        texts = list(texts)
        if not texts:
            return []
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_length, add_special_tokens=True,
                             return_token_type_ids=False)
        lengths = [len(x) for x in enc["input_ids"]]
        # Longest first (stable), so each batch pads to nearly its own length; order restored below.
        order = sorted(range(len(texts)), key=lambda i: -lengths[i])
        out: list[SparseVector | None] = [None] * len(texts)
        for s in range(0, len(order), self.batch_size):
            idx = order[s:s + self.batch_size]
            feats = [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i]} for i in idx]
            for i, vec in zip(idx, sparse_rows(self._forward(feats))):
                out[i] = vec
        return out  # type: ignore[return-value]


def load_splade(path_or_id: str, device: str = "cpu", dtype: str | None = None, max_length: int | None = None,
                trust_remote_code: bool = False, batch_size: int = DEFAULT_BATCH_SIZE, **_ignored) -> SpladeEncoder:
    """Factory registered as ``splade`` in ``ENCODERS``: ``splade:naver/splade-v3`` or ``splade:/path/to/model``."""
    return SpladeEncoder(path_or_id, device=device, dtype=dtype, max_length=max_length, batch_size=batch_size,
                         trust_remote_code=trust_remote_code)
