"""The toolkit's :class:`~pyserini_splare.encode.model.SparseModel` as a sentence-transformers input module.

Wrapping the composed model as the ``SparseEncoder``'s one module means the trained modules *are* the encode
modules. Query and document columns are told apart by the trainer's ``router_mapping``, passed to
:meth:`ToolkitSparseModule.preprocess` as ``task`` (SPLARE's Top-K differs per side). :class:`L0Flops` is
``FlopsLoss`` that also records the mean ℓ0 for the progress bar.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from sentence_transformers.base.modules.input_module import InputModule
from sentence_transformers.sparse_encoder.losses import FlopsLoss

TASK_KIND = {"query": "query", "document": "doc", None: "doc"}
TRAINABLE_STATE = "trainable_state.safetensors"


class ToolkitSparseModule(InputModule):
    """``preprocess(texts, task=)`` -> token features; ``forward(features)`` -> ``sentence_embedding`` (B, V)."""

    save_in_root = True
    config_keys: list[str] = []

    def __init__(self, sparse_model, max_length: int | None = None):
        super().__init__()
        self.sparse_model = sparse_model
        # --max-length caps both sides in training (the recipe's 512); the model keeps its own at encode time.
        self.train_max_length = max_length

    @property
    def tokenizer(self):
        return self.sparse_model.tokenizer

    @property
    def max_seq_length(self) -> int:
        return self.train_max_length or self.sparse_model.max_length("doc")

    def get_sentence_embedding_dimension(self) -> int:
        return int(self.sparse_model.space.size)

    def _length(self, kind: str, override: int | None) -> int:
        n = self.sparse_model.max_length(kind)
        for cap in (self.train_max_length, override):
            if cap:
                n = min(n, int(cap))
        return n

    def preprocess(self, inputs, prompt: str | None = None, task: str | None = None, max_length: int | None = None,
                   **kwargs) -> dict[str, Any]:
        texts = [prompt + t if prompt else t for t in inputs]
        kind = TASK_KIND.get(task, "doc")
        enc = self.sparse_model.tokenizer(texts, truncation=True, max_length=self._length(kind, max_length),
                                          padding="longest", return_special_tokens_mask=True,
                                          return_token_type_ids=False, return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                "special_tokens_mask": enc["special_tokens_mask"]}

    def forward(self, features: dict[str, Any], task: str | None = None, **kwargs) -> dict[str, Any]:
        kind = TASK_KIND.get(task or features.get("task"), "doc")
        feats = {k: features[k] for k in ("input_ids", "attention_mask", "special_tokens_mask")}
        features["sentence_embedding"] = self.sparse_model(feats, kind)
        return features

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The parameters being trained (all of SPLADE-tiny; only the LoRA adapter of an LLM trunk)."""
        return {n: p.detach().cpu().contiguous() for n, p in self.named_parameters() if p.requires_grad}

    def save(self, output_path: str, *args, safe_serialization: bool = True, **kwargs) -> None:
        """A trainer checkpoint: the toolkit's own checkpoint directory (loadable by ``encode``) plus the
        trainable tensors under their module names, which :func:`load_trainable_state` puts back exactly."""
        from safetensors.torch import save_file

        self.sparse_model.save(output_path)
        save_file(self.trainable_state(), os.path.join(output_path, TRAINABLE_STATE))

    @classmethod
    def load(cls, model_name_or_path: str, **kwargs):
        from ..encode.model import SparseModel

        return cls(SparseModel.load(model_name_or_path))


def load_trainable_state(module: ToolkitSparseModule, checkpoint_dir: str) -> None:
    """Resume: copy a checkpoint's trainable tensors into ``module`` (every name must match)."""
    from safetensors.torch import load_file

    state = load_file(os.path.join(checkpoint_dir, TRAINABLE_STATE))
    params = dict(module.named_parameters())
    missing = sorted(n for n, p in params.items() if p.requires_grad and n not in state)
    unknown = sorted(n for n in state if n not in params)
    if missing or unknown:
        raise ValueError(f"{checkpoint_dir}: trainable tensors differ from the model's "
                         f"(missing {missing[:3]}, unknown {unknown[:3]})")
    with torch.no_grad():
        for n, t in state.items():
            params[n].copy_(t)


class L0Flops(FlopsLoss):
    """``FlopsLoss`` that remembers the mean ℓ0 of the last batch it regularized (for the progress bar)."""

    last_l0: float = float("nan")

    def compute_loss_from_embeddings(self, embeddings: torch.Tensor) -> torch.Tensor:
        self.last_l0 = float((embeddings.detach() > 0).sum(dim=1).float().mean())
        return super().compute_loss_from_embeddings(embeddings)
