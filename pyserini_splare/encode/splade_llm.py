"""SPLADE over an LLM vocabulary (the SPLADE-8B baseline of the WSDM Cup 2026 report).

SPLADE pooling over an LM head's logits at full depth (docs/splare-checkpoint.md, "LLM-vocabulary SPLADE").
Terms are vocabulary ids (``t1234``): byte-level BPE tokens are not safe as whitespace-pretokenized terms.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any, ClassVar

from pydantic import Field
from pydantic.dataclasses import dataclass

from .._schemas import STRICT, validated
from ..vectors import PrefixedSpace
from .batching import torch_dtype
from .checkpoint_config import TrunkCheckpointConfig
from .lengths import lengths, reject_unknown
from .model import SparseModel
from .modules.trunk import resolve_path

CONFIG_FILE = "splade_llm_config.json"
CONFIG_FORMAT = "pyserini_splare.splade_llm/1"
TOKEN_PREFIX = "t"


@dataclass(config=STRICT)
class SpladeLLMConfig(TrunkCheckpointConfig):
    backbone: str = Field(description="HF hub id or local path of the causal LM (with its LM head)")
    lora: str | None = Field(None, description="peft LoRA adapter saved from AutoModelForCausalLM")
    format: str = CONFIG_FORMAT

    FILE: ClassVar[str] = CONFIG_FILE
    KIND: ClassVar[str] = "SPLADE-LLM"


def spec(model: SparseModel) -> dict[str, Any]:
    cfg = model.settings
    return {"type": "splade-llm", "path": model.path, "backbone": cfg.backbone, "lora": cfg.lora,
            "attention": cfg.attention, "max_length_query": model.max_length_query,
            "max_length_doc": model.max_length_doc}


def save(model: SparseModel, directory: str) -> None:
    """``splade_llm_config.json`` from the trunk's config; a trainable LoRA adapter goes to ``DIR/lora``
    (saved from the causal LM)."""
    trunk = model.trunk.config()
    cfg = SpladeLLMConfig(**{**asdict(model.settings), "attention": trunk["attention"],
                             "max_length_query": model.max_length_query, "max_length_doc": model.max_length_doc})
    if model.trunk.peft is not None:
        model.trunk.save_lora(os.path.join(directory, "lora"))
        cfg.lora = "lora"
    elif cfg.lora:
        cfg.lora = os.path.abspath(resolve_path(cfg.lora, model.path if os.path.isdir(model.path) else None))
    if os.path.exists(cfg.backbone) and not os.path.isabs(cfg.backbone):
        cfg.backbone = os.path.abspath(cfg.backbone)
    cfg.write(directory)


def readable_terms(model: SparseModel, ids) -> list[str]:
    """Vocabulary ids -> the text each token stands for (byte-level BPE decoded), for explanation."""
    tok = model.tokenizer
    return [tok.convert_tokens_to_string([t]) if t is not None else f"<{i}>"
            for i, t in zip(ids, tok.convert_ids_to_tokens([int(i) for i in ids]))]


def load_splade_llm(path_or_id: str, device: str = "cpu", dtype: Any = None, max_length_query: int | None = None,
                    max_length_doc: int | None = None, trust_remote_code: bool = False, batch_size: int = 32,
                    attention: str | None = None, lora: str | None = None, merge_lora: bool = True,
                    **_ignored) -> SparseModel:
    """A ``splade_llm_config.json`` directory, or a causal LM path/hub id (``attention``/``lora`` then
    come from the keyword arguments)."""
    reject_unknown(_ignored, "splade-llm")
    from .modules.pooling import MaxLog1pReluPooling
    from .modules.vocab import load_vocab_model

    path = os.fspath(path_or_id)
    if os.path.isdir(path):
        path = os.path.abspath(path)  # spec() is recorded in meta.json and read back from other directories
    if os.path.exists(os.path.join(path, CONFIG_FILE)):
        cfg = SpladeLLMConfig.read(path)
        base = path
    else:
        cfg = validated(SpladeLLMConfig, {"backbone": path, "lora": lora, "attention": attention or "causal"},
                        f"splade-llm:{path}")
        base = None
    q, d, over = lengths((cfg.max_length_query, cfg.max_length_doc), max_length_query, max_length_doc)
    trunk, head = load_vocab_model(resolve_path(cfg.backbone, base), "lm", attention=cfg.attention,
                                   lora=resolve_path(cfg.lora, base) if cfg.lora else None, device=device,
                                   dtype=torch_dtype(dtype, device, cfg.dtype), trust_remote_code=trust_remote_code,
                                   merge_lora=merge_lora, backbone=cfg.backbone)
    space = PrefixedSpace(TOKEN_PREFIX, head.vocab_size, name=f"splade-llm:{os.path.basename(os.path.normpath(path))}")
    return SparseModel(trunk, head, MaxLog1pReluPooling(), space=space, kind="splade-llm", path=path,
                       max_length_query=q, max_length_doc=d, settings=cfg, overrides=over, batch_size=batch_size)
