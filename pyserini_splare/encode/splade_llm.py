"""SPLADE over an LLM vocabulary (the SPLADE-8B baseline of the WSDM Cup 2026 report).

SPLADE (Formal et al., SIGIR 2021; "SPLADE v2", 2021): w_j = max_i log(1 + ReLU(logit_ij)), where
logit_i is the LM head's output for token i. SPLADE-8B applies it to Llama-3.1-8B (full depth, its final
norm and LM head over the ~128k byte-level BPE vocabulary) with bidirectional attention and LoRA, the
same pooling as SPLARE (Formal et al., ICLR 2026).

Terms are vocabulary *ids* (``t1234``): byte-level BPE tokens may hold spaces or odd bytes and are not
safe as whitespace-pretokenized Lucene terms (../shared/FACTS.md). :meth:`SpladeLLMEncoder.readable_terms`
turns ids back into text for explanation.

A model is named by a directory with ``splade_llm_config.json`` (:class:`SpladeLLMConfig`) or by a plain
causal-LM path / hub id (defaults: causal attention, no adapter).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .._cli import UsageError
from ..vectors import PrefixedSpace, SparseVector
from ._base import Kind, SparseEncoder, check_kind
from .backbone import ATTENTION_MODES, DTYPES, resolve_path
from .splare import pooled_in_chunks, rows_to_vectors, sorted_batches

CONFIG_FILE = "splade_llm_config.json"
CONFIG_FORMAT = "pyserini_splare.splade_llm/1"
TOKEN_PREFIX = "t"
# Tokens per chunk for the LM head: 128k-vocab logits for 8 x 1024 tokens would be 4 GB in float32.
HEAD_TOKEN_CHUNK = 128


@dataclass
class SpladeLLMConfig:
    backbone: str = field(metadata={"help": "HF hub id or local path of the causal LM (with its LM head)"})
    lora: str | None = field(default=None, metadata={"help": "peft LoRA adapter saved from AutoModelForCausalLM"})
    attention: str = field(default="causal", metadata={"help": f"one of {ATTENTION_MODES}"})
    max_length_query: int = field(default=512, metadata={"help": "query truncation (tokens)"})
    max_length_doc: int = field(default=1024, metadata={"help": "document truncation (tokens)"})
    dtype: str = field(default="bfloat16", metadata={"help": f"dtype on GPU; one of {sorted(DTYPES)}"})
    format: str = CONFIG_FORMAT

    def __post_init__(self):
        if self.attention not in ATTENTION_MODES:
            raise ValueError(f"attention must be one of {ATTENTION_MODES}, got {self.attention!r}")
        if str(self.dtype).lower() not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")
        for name in ("max_length_query", "max_length_doc"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @classmethod
    def read(cls, directory: str) -> SpladeLLMConfig:
        path = os.path.join(directory, CONFIG_FILE)
        try:
            with open(path, encoding="utf-8") as f:
                obj = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise UsageError(f"cannot read {path}: {e}") from None
        unknown = sorted(set(obj) - {f.name for f in fields(cls)})
        if unknown:
            raise UsageError(f"{path}: unknown keys {unknown}")
        try:
            return cls(**obj)
        except (TypeError, ValueError) as e:
            raise UsageError(f"{path}: {e}") from None

    def write(self, directory: str) -> str:
        from .._cli import atomic_file

        path = os.path.join(directory, CONFIG_FILE)
        with atomic_file(path) as f:
            json.dump(asdict(self), f, indent=2)
            f.write("\n")
        return path


def torch_tanh(x):
    import torch

    return torch.tanh(x)


class SpladeLLMEncoder(SparseEncoder):
    """Causal LM (full depth) -> LM-head logits -> max log1p(ReLU) over tokens -> ``t{id}`` terms."""

    def __init__(self, trunk, config: SpladeLLMConfig, path: str, batch_size: int = 32):
        if trunk.lm_head is None:
            raise ValueError("SPLADE-LLM needs a trunk loaded with its LM head")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.trunk, self.config, self.path, self.batch_size = trunk, config, path, int(batch_size)
        vocab = int(trunk.lm_head.weight.shape[0])
        self.space = PrefixedSpace(TOKEN_PREFIX, vocab, name=f"splade-llm:{os.path.basename(os.path.normpath(path))}")

    def _head(self, hidden):
        logits = self.trunk.lm_head(hidden).float()
        # Gemma 2/3 soft-cap logits in the causal-LM forward, outside the head: apply it the same way.
        cap = getattr(self.trunk.model.config, "final_logit_softcapping", None)
        if cap:
            logits = torch_tanh(logits / cap) * cap
        return logits

    def encode(self, texts: Sequence[str], kind: Kind = "doc") -> list[SparseVector]:
        import torch

        check_kind(kind)
        texts = list(texts)
        if not texts:
            return []
        max_len = self.config.max_length_query if kind == "query" else self.config.max_length_doc
        lengths = [len(x) for x in self.trunk.tokenizer(texts, truncation=True, max_length=max_len)["input_ids"]]
        out: list[SparseVector | None] = [None] * len(texts)
        for idx in sorted_batches(lengths, self.batch_size):
            enc = self.trunk.tokenize([texts[i] for i in idx], max_len)
            with torch.inference_mode():
                hidden = self.trunk.hidden(enc["input_ids"], enc["attention_mask"])
                mask = enc["attention_mask"].to(hidden.device)
                pooled = pooled_in_chunks(self._head, hidden, mask, HEAD_TOKEN_CHUNK)
            for i, vec in zip(idx, rows_to_vectors(pooled)):
                out[i] = vec
        return out  # type: ignore[return-value]

    def readable_terms(self, ids) -> list[str]:
        """Vocabulary ids -> the text each token stands for (byte-level BPE decoded), for explanation."""
        tok = self.trunk.tokenizer
        return [tok.convert_tokens_to_string([t]) if t is not None else f"<{i}>"
                for i, t in zip(ids, tok.convert_ids_to_tokens([int(i) for i in ids]))]

    def spec(self) -> dict[str, Any]:
        return {"type": "splade-llm", "path": self.path, "backbone": self.config.backbone, "lora": self.config.lora,
                "attention": self.config.attention, "max_length_query": self.config.max_length_query,
                "max_length_doc": self.config.max_length_doc}


def load_splade_llm(path_or_id: str, device: str = "cpu", dtype: Any = None, max_length: int | None = None,
                    trust_remote_code: bool = False, batch_size: int = 32, attention: str | None = None,
                    lora: str | None = None, **_ignored) -> SpladeLLMEncoder:
    """A ``splade_llm_config.json`` directory, or a causal LM path/hub id (``attention``/``lora`` then
    come from the keyword arguments)."""
    from .backbone import load_trunk

    path = os.fspath(path_or_id)
    if os.path.isdir(path):
        path = os.path.abspath(path)  # spec() is recorded in meta.json and read back from other directories
    if os.path.exists(os.path.join(path, CONFIG_FILE)):
        cfg = SpladeLLMConfig.read(path)
        base = path
    else:
        try:
            cfg = SpladeLLMConfig(backbone=path, lora=lora, attention=attention or "causal")
        except ValueError as e:
            raise UsageError(str(e)) from None
        base = None
    if max_length is not None:
        if int(max_length) <= 0:
            raise UsageError(f"max_length must be positive, got {max_length}")
        cfg.max_length_query = cfg.max_length_doc = int(max_length)
    if dtype is None:
        dtype = "float32" if str(device).startswith("cpu") else cfg.dtype
    trunk = load_trunk(resolve_path(cfg.backbone, base), layer=None, attention=cfg.attention,
                       lora=resolve_path(cfg.lora, base) if cfg.lora else None, device=device, dtype=dtype,
                       with_lm_head=True, trust_remote_code=trust_remote_code)
    return SpladeLLMEncoder(trunk, cfg, path, batch_size=batch_size)
