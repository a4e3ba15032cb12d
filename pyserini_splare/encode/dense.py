r"""Dense encoders (Qwen3-Embedding, Zhang et al., 2025, arXiv 2506.05176; docs/dense.md).

Queries are ``Instruct: {task}\nQuery:{q}``, documents plain text; sequences end with ``<|endoftext|>``, are
left-padded, and the embedding is the last token's hidden state, L2-normalized. Module-level code needs only
numpy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._errors import UsageError, first_line
from .base import DenseEncoder, Kind, check_kind

DEFAULT_TASK = "Given a web search query, retrieve relevant passages that answer the query"
DEFAULT_MAX_LENGTH = 8192


# --------------------------------------------------------------------------------------------
# Qwen3-Embedding
# --------------------------------------------------------------------------------------------


def last_token_pool(hidden, mask):
    """Hidden state of each sequence's last real token (Qwen3-Embedding's pooling).

    Under left padding that is the last column; under right padding it is found from the mask.
    """
    import torch

    if bool((mask[:, -1] == 1).all()):
        return hidden[:, -1]
    last = mask.sum(dim=1) - 1
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


class Qwen3EmbedEncoder(DenseEncoder):
    """Qwen3-Embedding (0.6B/4B/8B): instruction-prefixed queries, plain documents, last-token pooling, L2."""

    def __init__(self, path: str, *, device: str = "cpu", dtype: str | None = None,
                 max_length_query: int | None = None, max_length_doc: int | None = None,
                 task: str = DEFAULT_TASK, batch_size: int = 8, trust_remote_code: bool = False):
        import torch
        from transformers import AutoModel, AutoTokenizer

        from .batching import torch_dtype
        from .lengths import lengths
        from .modules.trunk import quiet_transformers

        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if not task or not task.strip():
            raise ValueError("task instruction must be non-empty")
        self.path, self.task, self.batch_size = str(path), task, batch_size
        self.device, self.dtype = torch.device(device), torch_dtype(dtype)
        self.max_length_query, self.max_length_doc, self.overrides = lengths(
            (DEFAULT_MAX_LENGTH, DEFAULT_MAX_LENGTH), max_length_query, max_length_doc)
        local = Path(self.path).is_dir()
        try:
            # Left padding: every sequence then ends in the last column, where the pooled token sits.
            self.tokenizer = AutoTokenizer.from_pretrained(self.path, padding_side="left", local_files_only=local,
                                                           trust_remote_code=trust_remote_code)
            with quiet_transformers():
                self.model = AutoModel.from_pretrained(self.path, dtype=self.dtype, local_files_only=local,
                                                       trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as e:
            raise UsageError(f"cannot load a Qwen3-Embedding model from {self.path}: {first_line(e)}") from None
        self.model.to(self.device).eval()
        self.dim = int(self.model.config.hidden_size)
        self.eos_id = self.tokenizer.convert_tokens_to_ids("<|endoftext|>")
        if not isinstance(self.eos_id, int) or self.eos_id == self.tokenizer.unk_token_id:
            self.eos_id = self.tokenizer.eos_token_id
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.convert_ids_to_tokens(self.eos_id)

    def spec(self) -> dict[str, Any]:
        spec = {"type": "qwen3-embed", "path": self.path, "max_length_query": self.max_length_query,
                "max_length_doc": self.max_length_doc, "task": self.task,
                "dtype": str(self.dtype).replace("torch.", ""), "pooling": "last-token", "normalized": True}
        if self.overrides:
            spec["overrides"] = dict(self.overrides)
        return spec

    def format(self, text: str, kind: Kind) -> str:
        return f"Instruct: {self.task}\nQuery:{text}" if kind == "query" else text

    def _ids(self, text: str, max_length: int) -> list[int]:
        """Token ids ending with ``<|endoftext|>`` (added here when the tokenizer does not add it itself)."""
        ids = self.tokenizer(text, truncation=True, max_length=max_length, add_special_tokens=True)["input_ids"]
        if self.eos_id is not None and (not ids or ids[-1] != self.eos_id):
            ids = ids[: max_length - 1] + [self.eos_id]
        return ids

    def encode(self, texts: Sequence[str], kind: Kind = "doc") -> np.ndarray:
        import torch

        check_kind(kind)
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        from .batching import length_sorted_batches

        max_length = self.max_length_query if kind == "query" else self.max_length_doc
        ids = [self._ids(self.format(t, kind), max_length) for t in texts]
        out = np.zeros((len(ids), self.dim), np.float32)
        for idx in length_sorted_batches([len(x) for x in ids], self.batch_size):
            batch = self.tokenizer.pad([{"input_ids": ids[i]} for i in idx], padding="longest", return_tensors="pt")
            with torch.inference_mode():
                try:
                    h = self.model(input_ids=batch["input_ids"].to(self.device),
                                   attention_mask=batch["attention_mask"].to(self.device)).last_hidden_state
                except torch.OutOfMemoryError:
                    raise UsageError(f"out of memory embedding {len(idx)} texts: lower --batch-size or --max-length") from None
                pooled = last_token_pool(h, batch["attention_mask"].to(self.device)).float()
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1)
            out[idx] = pooled.cpu().numpy()
        return out


def load_qwen3_embed(path_or_id: str, device: str = "cpu", dtype: str | None = None,
                     max_length_query: int | None = None, max_length_doc: int | None = None,
                     trust_remote_code: bool = False, batch_size: int = 8, task: str = DEFAULT_TASK,
                     **_ignored) -> Qwen3EmbedEncoder:
    """Factory registered as ``qwen3-embed`` in ``ENCODERS`` (``qwen3-embed:Qwen/Qwen3-Embedding-8B``)."""
    from .lengths import reject_unknown

    reject_unknown(_ignored, "qwen3-embed")
    return Qwen3EmbedEncoder(path_or_id, device=device, dtype=dtype, max_length_query=max_length_query,
                             max_length_doc=max_length_doc, task=task, batch_size=batch_size,
                             trust_remote_code=trust_remote_code)
