"""A causal LLM used as an encoder trunk: optional layer cut, bidirectional attention and LoRA.

SPLARE (Formal et al., ICLR 2026) reads the residual stream of Llama-3.1-8B after block ``l`` (26 for
SPLARE-7B) and feeds it to a sparse autoencoder; the blocks above ``l`` are never needed, so they are
neither loaded nor run: the model is built from its config with ``num_hidden_layers = l + 1`` and only
the weights of the kept blocks are read from the safetensors checkpoint. The final RMSNorm is replaced
by the identity, because ``last_hidden_state`` comes *after* it and the SAE was trained on the raw
residual stream (``blocks.{l}.hook_resid_post`` in Llama Scope's naming; see ../shared/FACTS.md).

SPLADE-8B (the LLM-vocabulary SPLADE baseline) uses the whole model plus its LM head instead
(``with_lm_head=True``: the final norm is kept, because the LM head was trained after it).

Bidirectional attention (as in SPLARE-7B / SPLADE-8B fine-tuning, LLM2Vec-style) is obtained by passing
an explicit 4D float mask (0 = attend, dtype-min = masked; only padding columns are masked), which
transformers uses as-is with both the ``eager`` and ``sdpa`` kernels instead of building a causal mask.

Works with the decoder families whose base model exposes ``layers`` and ``norm`` (Llama, Mistral, Qwen2/3,
Gemma/Gemma2/text-only Gemma3) through ``AutoConfig`` / ``AutoModel``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .._cli import UsageError

Attention = Literal["causal", "bidirectional"]
ATTENTION_MODES = ("causal", "bidirectional")

# User-facing dtype names -> torch dtype attribute names. "auto"/None keeps the checkpoint's float32
# default on CPU (bf16 matmuls are slow on most CPUs); GPUs should pass bf16 explicitly.
DTYPES = {
    "float32": "float32", "fp32": "float32",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float16": "float16", "fp16": "float16", "half": "float16",
}


def torch_dtype(name: Any):
    """``"bf16"`` / ``"bfloat16"`` / ``torch.bfloat16`` / None -> a torch dtype (None -> float32)."""
    import torch

    if name is None or name == "auto":
        return torch.float32
    if isinstance(name, torch.dtype):
        return name
    key = str(name).lower()
    if key not in DTYPES:
        raise ValueError(f"unknown dtype {name!r} (allowed: {', '.join(sorted(DTYPES))}, auto)")
    return getattr(torch, DTYPES[key])


def dtype_name(dtype) -> str:
    return str(dtype).replace("torch.", "")


def resolve_path(path: str, base: str | os.PathLike | None = None) -> str:
    """A path relative to ``base`` (a checkpoint directory) if it exists there, else as given
    (an absolute/relative local path, or a hub id left for transformers to resolve)."""
    if base is not None and not os.path.isabs(path):
        cand = os.path.join(base, path)
        if os.path.exists(cand):
            return cand
    return path


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' load report (a table of the upper-layer weights we deliberately skip)."""
    from transformers.utils import logging as hf_logging

    old = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # a per-load "Loading weights" bar; the encode CLI has its own
    try:
        yield
    finally:
        hf_logging.set_verbosity(old)
        if bars:
            hf_logging.enable_progress_bar()


def bidirectional_mask(attention_mask, dtype):
    """(batch, tokens) 0/1 mask -> (batch, 1, tokens, tokens) additive float mask in ``dtype``:
    every token attends every real token; padding columns get the dtype's minimum."""
    import torch

    b, t = attention_mask.shape
    keep = attention_mask.bool()[:, None, None, :].expand(b, 1, t, t)
    out = torch.zeros((b, 1, t, t), dtype=dtype, device=attention_mask.device)
    return out.masked_fill(~keep, torch.finfo(dtype).min)


@dataclass
class Trunk:
    """A loaded trunk: ``hidden(input_ids, attention_mask)`` -> (batch, tokens, hidden) states.

    ``model`` is the base decoder (``LlamaModel`` & co.), ``lm_head`` the output projection when loaded
    with ``with_lm_head=True``. ``layer`` is the 0-indexed last block kept (None = full depth).
    """

    model: Any
    tokenizer: Any
    path: str
    layer: int | None
    n_model_layers: int
    attention: str
    lora: str | None
    dtype: Any
    device: str
    lm_head: Any = None

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    def tokenize(self, texts: Sequence[str], max_length: int):
        return self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )

    def hidden(self, input_ids, attention_mask):
        """Raw residual stream after block ``layer`` (or the final-normed states for full depth)."""
        input_ids = input_ids.to(self.device)
        attention_mask = attention_mask.to(self.device)
        mask = attention_mask
        if self.attention == "bidirectional":
            mask = bidirectional_mask(attention_mask, self.dtype)
        out = self.model(input_ids=input_ids, attention_mask=mask, use_cache=False)
        return out.last_hidden_state


def load_tokenizer(path: str, trust_remote_code: bool = False):
    """The model's tokenizer, right-padded, with a pad token (LLM tokenizers often have none; any id
    works because padding positions are masked everywhere)."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot load a tokenizer from {path!r}: {e}") from None
    tok.padding_side = "right"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
    if tok.pad_token is None:
        raise UsageError(f"tokenizer at {path!r} has no pad, eos or unk token to pad with")
    return tok


def _load_config(path: str, trust_remote_code: bool):
    from transformers import AutoConfig

    if (os.path.isabs(path) or path.startswith(".") or os.sep + os.sep in path) and not os.path.exists(path):
        raise UsageError(f"model path {path!r} does not exist")
    try:
        return AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot load a model config from {path!r}: {e}") from None


def _cut_config(config, layer: int):
    """Config for the first ``layer + 1`` blocks (per-layer lists like ``layer_types`` cut too)."""
    n = int(config.num_hidden_layers)
    if not 0 <= layer < n:
        raise UsageError(f"layer {layer} is beyond the model's depth: it has {n} blocks (valid layers 0..{n - 1})")
    config.num_hidden_layers = layer + 1
    for key in ("layer_types", "sliding_window_pattern_list"):
        val = getattr(config, key, None)
        if isinstance(val, list) and len(val) == n:
            setattr(config, key, val[: layer + 1])
    return config


def _check_loading_info(info: dict, path: str) -> None:
    missing = [k for k in info.get("missing_keys", []) if "rotary" not in k]
    if missing:
        shown = ", ".join(sorted(missing)[:5])
        raise UsageError(f"checkpoint {path!r} lacks {len(missing)} weights the trunk needs (e.g. {shown})")
    mismatched = info.get("mismatched_keys", [])
    if mismatched:
        raise UsageError(f"checkpoint {path!r} has weights of the wrong shape: {mismatched[:3]}")


def load_trunk(
    path: str,
    *,
    layer: int | None = None,
    attention: Attention = "causal",
    lora: str | None = None,
    device: str = "cpu",
    dtype: Any = None,
    with_lm_head: bool = False,
    trust_remote_code: bool = False,
) -> Trunk:
    """Load a decoder LLM as an encoder trunk.

    ``layer``: keep blocks ``0..layer`` (0-indexed, Llama Scope ``L{layer}R`` convention) and replace the
    final norm by the identity; None keeps the full depth and its final norm. ``with_lm_head`` loads the
    causal-LM head too (full depth only). ``lora``: a peft adapter directory saved from the same model
    class (``AutoModel`` trunk for a cut trunk, ``AutoModelForCausalLM`` with the LM head); it is merged
    into the weights, so inference costs nothing extra.
    """
    import torch

    if attention not in ATTENTION_MODES:
        raise ValueError(f"attention must be one of {ATTENTION_MODES}, got {attention!r}")
    if layer is not None and with_lm_head:
        raise ValueError("with_lm_head needs the full depth (layer=None)")
    tdtype = torch_dtype(dtype)
    config = _load_config(path, trust_remote_code)
    n_model_layers = int(config.num_hidden_layers)
    if layer is not None:
        config = _cut_config(config, int(layer))

    from transformers import AutoModel, AutoModelForCausalLM

    cls = AutoModelForCausalLM if with_lm_head else AutoModel
    try:
        with quiet_transformers():
            # transformers builds the smaller model on the meta device and reads only the tensors it
            # expects from the safetensors files: upper blocks and the LM head are never materialized.
            model, info = cls.from_pretrained(
                path, config=config, dtype=tdtype, trust_remote_code=trust_remote_code, output_loading_info=True
            )
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot load model weights from {path!r}: {e}") from None
    _check_loading_info(info, path)

    if lora:
        try:
            from peft import PeftModel
        except ImportError as e:  # pragma: no cover - peft is a dependency
            raise UsageError("LoRA adapters need the 'peft' package") from e
        if not os.path.exists(os.path.join(lora, "adapter_config.json")):
            raise UsageError(f"LoRA adapter {lora!r}: no adapter_config.json there")
        model = PeftModel.from_pretrained(model, lora).merge_and_unload()

    lm_head = None
    base = model
    if with_lm_head:
        lm_head = model.get_output_embeddings()
        base = model.get_decoder() if hasattr(model, "get_decoder") else model.model
    if layer is not None:
        if not hasattr(base, "norm"):
            raise UsageError(f"{type(base).__name__} has no final 'norm' to bypass; unsupported architecture")
        base.norm = torch.nn.Identity()
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return Trunk(
        model=base,
        tokenizer=load_tokenizer(path, trust_remote_code),
        path=path,
        layer=layer,
        n_model_layers=n_model_layers,
        attention=attention,
        lora=lora,
        dtype=tdtype,
        device=device,
        lm_head=lm_head,
    )
