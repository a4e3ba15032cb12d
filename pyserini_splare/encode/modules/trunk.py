"""The trunk: a Hugging Face encoder (BERT family) or decoder (Llama, Qwen, Gemma, ...) as a token encoder.

``Trunk(input_ids, attention_mask) -> (batch, tokens, hidden)`` with an optional layer cut (blocks ``0..l``,
the upper blocks never loaded; a decoder's final norm replaced by the identity, because an SAE is trained on
the raw residual stream), ``causal`` | ``bidirectional`` attention (a 4D float mask), and a LoRA adapter
(docs/splare-checkpoint.md, "How the trunk is cut"). ``root`` is the loaded Hugging Face object and ``model``
its base model; adapters attach to ``root``, so a head sharing its modules sees them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import Any, Literal

import torch

from ..._errors import UsageError, first_line
from ..batching import dtype_name, torch_dtype
from .config import ConfigModule
from .names import ATTENTION_MODES

Attention = Literal["causal", "bidirectional"]


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
    """Silence transformers' load report (a table of the upper-layer weights we deliberately skip) and
    its per-load progress bar (the encode CLI has its own)."""
    from transformers.utils import logging as hf_logging

    old = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(old)
        if bars:
            hf_logging.enable_progress_bar()


def bidirectional_mask(attention_mask, dtype):
    """(batch, tokens) 0/1 mask -> (batch, 1, tokens, tokens) additive float mask in ``dtype``:
    every token attends every real token; padding columns get the dtype's minimum."""
    b, t = attention_mask.shape
    keep = attention_mask.bool()[:, None, None, :].expand(b, 1, t, t)
    out = torch.zeros((b, 1, t, t), dtype=dtype, device=attention_mask.device)
    return out.masked_fill(~keep, torch.finfo(dtype).min)


def load_tokenizer(path: str, trust_remote_code: bool = False, padding_side: str = "right"):
    """The model's tokenizer with a pad token (LLM tokenizers often have none; any id works because
    padding positions are masked everywhere). Right padding: position 0 is every text's first token."""
    from transformers import AutoTokenizer

    local = os.path.isdir(path)
    try:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code, local_files_only=local)
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot load a tokenizer from {path!r}: {first_line(e)}") from None
    tok.padding_side = padding_side
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
    if tok.pad_token is None:
        raise UsageError(f"tokenizer at {path!r} has no pad, eos or unk token to pad with")
    return tok


def load_config(path: str, trust_remote_code: bool = False):
    from transformers import AutoConfig

    if (os.path.isabs(path) or path.startswith(".") or os.sep + os.sep in path) and not os.path.exists(path):
        raise UsageError(f"model path {path!r} does not exist")
    try:
        return AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code,
                                          local_files_only=os.path.isdir(path))
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot load a model config from {path!r}: {first_line(e)}") from None


def cut_config(config, layer: int):
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


def check_loading_info(info: dict, path: str) -> None:
    """Weights the trunk needs must all be in the checkpoint (rotary buffers and BERT's unused pooler aside)."""
    missing = [k for k in info.get("missing_keys", [])
               if "rotary" not in k and k.split(".")[0] != "pooler" and ".pooler." not in k]
    if missing:
        shown = ", ".join(sorted(missing)[:5])
        raise UsageError(f"checkpoint {path!r} lacks {len(missing)} weights the trunk needs (e.g. {shown})")
    mismatched = info.get("mismatched_keys", [])
    if mismatched:
        raise UsageError(f"checkpoint {path!r} has weights of the wrong shape: {mismatched[:3]}")


def is_decoder(base) -> bool:
    """Decoder families (Llama, Mistral, Qwen, Gemma) expose ``layers`` + ``norm``; the BERT family an
    ``encoder.layer`` stack. Decided from the module structure, not from the model's name."""
    if hasattr(base, "layers") and hasattr(base, "norm"):
        return True
    if hasattr(getattr(base, "encoder", None), "layer"):
        return False
    raise UsageError(f"{type(base).__name__}: neither a decoder (layers + norm) nor a BERT-style encoder "
                     "(encoder.layer): unsupported trunk architecture")


class Trunk(ConfigModule, torch.nn.Module):
    """Token encoder: ``forward(input_ids, attention_mask) -> (batch, tokens, hidden)``.

    Config keys: ``backbone``, ``layer`` (last block kept, None = all), ``attention``, ``lora``. Build with
    :func:`load_trunk` or ``modules.vocab.load_vocab_model``.
    """

    config_keys = ("backbone", "layer", "attention", "lora")

    def __init__(self, root, model, tokenizer, *, backbone: str, layer: int | None, attention: Attention | None,
                 lora: str | None = None, n_model_layers: int | None = None):
        super().__init__()
        self.decoder = is_decoder(model)
        attention = attention or ("causal" if self.decoder else "bidirectional")
        if attention not in ATTENTION_MODES:
            raise ValueError(f"attention must be one of {ATTENTION_MODES}, got {attention!r}")
        if attention == "causal" and not self.decoder:
            raise UsageError(f"{type(model).__name__} is an encoder: its attention is bidirectional, not causal")
        self.root = root  # the loaded HF object (LoRA attaches here); `model` is its base, run by forward
        self.model = model
        self.tokenizer = tokenizer
        self.backbone, self.layer, self.attention, self.lora = backbone, layer, attention, lora
        self.n_model_layers = int(n_model_layers or model.config.num_hidden_layers)
        self.peft = None  # a PeftModel wrapping `root` once add_lora() was called

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def max_positions(self) -> int | None:
        """The longest input the trunk can take, as its tokenizer declares it (``model_max_length``: 512 for a
        BERT/XLM-R trunk with learned absolute positions, 131,072 for Llama-3.1); None when it declares none."""
        n = getattr(self.tokenizer, "model_max_length", None)
        return int(n) if isinstance(n, int) and 0 < n < 10 ** 9 else None  # unset: transformers' 1e30 sentinel

    @property
    def dtype(self):
        return next(self.model.parameters()).dtype

    @property
    def device(self):
        return next(self.model.parameters()).device

    def forward(self, input_ids, attention_mask):
        """Raw residual stream after block ``layer`` (a decoder's final-normed states at full depth)."""
        mask = attention_mask
        if self.decoder and self.attention == "bidirectional":
            mask = bidirectional_mask(attention_mask, self.dtype)
        kwargs = {"use_cache": False} if self.decoder else {}
        return self.model(input_ids=input_ids, attention_mask=mask, **kwargs).last_hidden_state

    def add_lora(self, r: int = 64, alpha: int = 128, target_modules: Sequence[str] | str | None = None,
                 dropout: float = 0.0, **kwargs):
        """Wrap ``root`` with a fresh trainable peft LoRA adapter (peft freezes every other weight of
        ``root``); ``target_modules`` None lets peft pick the attention projections it knows for the
        architecture. Returns the PeftModel."""
        from peft import LoraConfig, get_peft_model

        if self.peft is not None:
            raise ValueError("this trunk already has a trainable LoRA adapter")
        if isinstance(target_modules, (list, tuple)) and "exclude_modules" not in kwargs:
            # Only modules inside the blocks that run: a name like ``dense`` also matches a BERT pooler's
            # projection, whose output the cut trunk never returns, so its adapter would never be trained.
            outside = self._outside_blocks(set(target_modules))
            if outside:
                kwargs["exclude_modules"] = outside
        cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules, **kwargs)
        self.peft = get_peft_model(self.root, cfg)
        return self.peft

    def _outside_blocks(self, names: set[str]) -> list[str]:
        """Full names of modules called one of ``names`` that are not inside the trunk's blocks (the
        ``ModuleList`` of ``num_hidden_layers`` entries); none when the blocks cannot be found."""
        n = getattr(getattr(self.model, "config", None), "num_hidden_layers", None)
        mods = list(self.root.named_modules())
        blocks = next((name for name, m in mods if isinstance(m, torch.nn.ModuleList) and len(m) == n), None)
        if not n or blocks is None:
            return []
        return [name for name, _ in mods if name.rsplit(".", 1)[-1] in names and not name.startswith(blocks + ".")]

    def save_lora(self, directory: str) -> str:
        """Write the trainable adapter (``adapter_config.json`` + weights) to ``directory``."""
        if self.peft is None:
            raise ValueError("no trainable LoRA adapter: call add_lora() first")
        self.peft.save_pretrained(directory)
        return directory


def attach_lora(root, lora: str, merge: bool = True):
    """Load the peft adapter at ``lora`` onto ``root``; merged into the weights (free at inference) or
    kept as a trainable PeftModel. Returns the object to use as root."""
    try:
        from peft import PeftModel
    except ImportError as e:  # pragma: no cover - peft is a dependency
        raise UsageError("LoRA adapters need the 'peft' package") from e
    if not os.path.exists(os.path.join(lora, "adapter_config.json")):
        raise UsageError(f"LoRA adapter {lora!r}: no adapter_config.json there")
    model = PeftModel.from_pretrained(root, lora, is_trainable=not merge)
    return model.merge_and_unload() if merge else model


def load_hf(cls, path: str, *, layer: int | None, device: Any, dtype: Any, trust_remote_code: bool):
    """``cls.from_pretrained`` with an optional layer cut; returns (model, n_model_layers)."""
    config = load_config(path, trust_remote_code)
    n_model_layers = int(config.num_hidden_layers)
    if layer is not None:
        config = cut_config(config, int(layer))
    try:
        with quiet_transformers():
            # Built on the meta device from the (cut) config, then only the tensors it expects are read from
            # the safetensors files: upper blocks (and an unused head) are never materialized.
            model, info = cls.from_pretrained(path, config=config, dtype=torch_dtype(dtype),
                                              trust_remote_code=trust_remote_code, output_loading_info=True,
                                              local_files_only=os.path.isdir(path))
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot load model weights from {path!r}: {first_line(e)}") from None
    check_loading_info(info, path)
    return model, n_model_layers


def load_trunk(path: str, *, layer: int | None = None, attention: Attention | None = None, lora: str | None = None,
               device: Any = "cpu", dtype: Any = None, trust_remote_code: bool = False, merge_lora: bool = True,
               backbone: str | None = None) -> Trunk:
    """A trunk without a vocabulary head (SPLARE's, before its SAE): ``AutoModel`` cut after ``layer``.

    ``backbone`` is what :meth:`Trunk.config` records (default ``path``).
    """
    from transformers import AutoModel

    if attention is not None and attention not in ATTENTION_MODES:
        raise ValueError(f"attention must be one of {ATTENTION_MODES}, got {attention!r}")
    model, n = load_hf(AutoModel, path, layer=layer, device=device, dtype=dtype, trust_remote_code=trust_remote_code)
    root = attach_lora(model, lora, merge_lora) if lora else model
    base = root.get_base_model() if hasattr(root, "get_base_model") else root
    if layer is not None and is_decoder(base):
        base.norm = torch.nn.Identity()  # the SAE reads the raw residual stream, not the final-normed one
    trunk = Trunk(root, base, load_tokenizer(path, trust_remote_code), backbone=backbone or path, layer=layer,
                  attention=attention, lora=lora, n_model_layers=n)
    if lora and not merge_lora:
        trunk.peft = root
    return trunk.to(device).eval()


__all__ = ["ATTENTION_MODES", "Attention", "Trunk", "attach_lora", "bidirectional_mask", "cut_config",
           "dtype_name", "load_config", "load_hf", "load_tokenizer", "load_trunk", "quiet_transformers",
           "resolve_path"]
