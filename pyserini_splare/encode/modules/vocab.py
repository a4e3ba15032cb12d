"""Vocabulary head: token states -> logits over a vocabulary (a masked-LM head or a causal LM head).

SPLADE pools these logits with :class:`.pooling.MaxLog1pReluPooling`, over BERT's WordPiece vocabulary or an
LLM's at full depth (SPLADE-8B: final norm kept, because the LM head was trained after it).
:func:`load_vocab_model` loads the model once and splits it into a trunk and a :class:`VocabHead` sharing its
modules, so saving that object saves what was trained.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import torch

from ..._errors import UsageError
from .config import ConfigModule
from .trunk import Trunk, attach_lora, is_decoder, load_hf, load_tokenizer

HeadKind = Literal["mlm", "lm"]


class VocabHead(ConfigModule, torch.nn.Module):
    """``forward(hidden (..., H)) -> logits (..., vocab)``.

    ``softcap``: Gemma 2/3 soft-cap logits as ``tanh(x / cap) * cap`` in the causal-LM forward, outside
    the head module; it is applied here the same way (in float32).
    """

    pooling = "max_log1p_relu"
    config_keys = ("kind", "vocab_size", "softcap")

    def __init__(self, module, vocab_size: int, kind: HeadKind, softcap: float | None = None):
        super().__init__()
        if kind not in ("mlm", "lm"):
            raise ValueError(f"kind must be 'mlm' or 'lm', got {kind!r}")
        self.module, self.vocab_size, self.kind = module, int(vocab_size), kind
        self.softcap = float(softcap) if softcap else None

    def config(self) -> dict[str, Any]:
        return {"head": "vocab", **super().config()}

    def forward(self, hidden):
        logits = self.module(hidden)
        if self.softcap:
            logits = torch.tanh(logits.float() / self.softcap) * self.softcap
        return logits


def _mlm_head(mlm) -> torch.nn.Module:
    """The masked-LM's head: every child module but the base model (BERT: ``cls``; RoBERTa/XLM-R:
    ``lm_head``). DistilBERT's head is four children applied in order, as its forward does."""
    base = mlm.base_model
    kids = [(n, m) for n, m in mlm.named_children() if m is not base and not isinstance(m, torch.nn.modules.loss._Loss)]
    names = [n for n, _ in kids]
    if names == ["vocab_transform", "activation", "vocab_layer_norm", "vocab_projector"]:
        return torch.nn.Sequential(*(m for _, m in kids))
    if len(kids) == 1:
        return kids[0][1]
    raise UsageError(f"{type(mlm).__name__}: cannot tell its MLM head from its children {names}")


def load_vocab_model(path: str, kind: HeadKind, *, attention: str | None = None, lora: str | None = None,
                     device: Any = "cpu", dtype: Any = None, trust_remote_code: bool = False,
                     merge_lora: bool = True, backbone: str | None = None) -> tuple[Trunk, VocabHead]:
    """(trunk, head) from one masked-LM (``kind="mlm"``) or causal-LM (``"lm"``) checkpoint, full depth.

    ``lora``: a peft adapter saved from the same ``AutoModelFor...`` class, attached before the split.
    """
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    cls = AutoModelForMaskedLM if kind == "mlm" else AutoModelForCausalLM
    root, n = load_hf(cls, path, layer=None, device=device, dtype=dtype, trust_remote_code=trust_remote_code)
    if lora:
        root = attach_lora(root, lora, merge_lora)
    lm = root.get_base_model() if hasattr(root, "get_base_model") else root
    base = lm.base_model
    if kind == "lm":
        module = lm.get_output_embeddings()
        if module is None or not is_decoder(base):
            raise UsageError(f"{path}: not a causal LM with an LM head")
        softcap = getattr(lm.config, "final_logit_softcapping", None)
    else:
        module, softcap = _mlm_head(lm), None
    vocab = int(lm.config.vocab_size)
    trunk = Trunk(root, base, load_tokenizer(path, trust_remote_code), backbone=backbone or path, layer=None,
                  attention=attention, lora=lora, n_model_layers=n)
    if lora and not merge_lora:
        trunk.peft = root
    head = VocabHead(module, vocab, kind, softcap)
    trunk.to(device).eval()
    head.to(device).eval()
    return trunk, head


def save_mlm(trunk: Trunk, directory: str) -> None:
    """Write the masked LM (trunk + head, as loaded) and its tokenizer as a Hugging Face model folder."""
    os.makedirs(directory, exist_ok=True)
    root = trunk.peft if trunk.peft is not None else trunk.root
    root.save_pretrained(directory)
    trunk.tokenizer.save_pretrained(directory)
