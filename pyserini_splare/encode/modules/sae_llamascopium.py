"""The layout the Llama Scope authors' library saves SAEs in (``llamascopium``, formerly ``lm-saes``, v2).

Its ``normalize_activations`` + ``encode`` are :class:`~.sae.SAE`'s formula with ``input_scale`` the
dataset-wise factor, ``gate = ||W_D[j, :]||`` and the exponentiated log threshold; files, options and what
is refused: docs/splare-checkpoint.md, "SAE formats" (tests/test_models_llamascopium.py checks it against
llamascopium itself).
"""

from __future__ import annotations

import math
import os

from ..._errors import UsageError
from .sae_io import _load_tensors, _need, _read_json

CONFIG_FILE = "config.json"
# llamascopium's own search order for safetensors weights (SparseDictionary.from_local); .pt and .dcp
# checkpoints are pickles / distributed shards and are not read.
WEIGHT_FILES = ("sae_weights.safetensors", os.path.join("checkpoints", "pruned.safetensors"),
                os.path.join("checkpoints", "final.safetensors"))
SUPPORTED_ACTIVATIONS = ("relu", "jumprelu", "topk")
SUPPORTED_NORMS = ("dataset-wise", "inference")
DEFAULT_TOP_K = 50  # SparseDictionaryConfig.top_k


def is_llamascopium_dir(path: str) -> bool:
    """A folder llamascopium saved: its config.json names an ``sae_type`` (a Hugging Face model's does not)."""
    cfg = os.path.join(path, CONFIG_FILE)
    if not os.path.isfile(cfg):
        return False
    obj = _read_json(cfg)
    return isinstance(obj, dict) and "sae_type" in obj


def weights_file(path: str) -> str:
    for name in WEIGHT_FILES:
        cand = os.path.join(path, name)
        if os.path.isfile(cand):
            return cand
    raise UsageError(f"llamascopium SAE {path!r}: none of {', '.join(WEIGHT_FILES)} "
                     "(.pt and .dcp checkpoints are not read: convert them to safetensors)")


def read_config(path: str) -> dict:
    """config.json, with the modes the toolkit cannot compute refused."""
    cfg = _read_json(os.path.join(path, CONFIG_FILE))
    where = os.path.join(path, CONFIG_FILE)
    if cfg.get("sae_type", "sae") != "sae":
        raise UsageError(f"{where}: sae_type {cfg.get('sae_type')!r} is not a plain SAE (only 'sae' is supported)")
    act = str(cfg.get("act_fn", "relu")).lower()
    if act not in SUPPORTED_ACTIVATIONS:
        raise UsageError(f"{where}: act_fn {act!r} is not supported (one of {', '.join(SUPPORTED_ACTIVATIONS)}; "
                         "batch-level TopK depends on the batch, so a text's latents would too)")
    norm = cfg.get("norm_activation", "dataset-wise")
    if norm not in SUPPORTED_NORMS:
        raise UsageError(f"{where}: norm_activation {norm!r} is not supported (one of {', '.join(SUPPORTED_NORMS)})")
    if cfg.get("use_glu_encoder"):
        raise UsageError(f"{where}: use_glu_encoder is not supported")
    if "d_model" not in cfg or "hook_point_in" not in cfg:
        raise UsageError(f"{where}: lacks d_model or hook_point_in: not a llamascopium SAE config")
    return cfg


def llamascopium_params(path: str, activation: str | None, k: int | None) -> dict:
    """``SAE`` arguments for a llamascopium folder (``activation``/``k`` override the config's)."""
    cfg = read_config(path)
    wfile = weights_file(path)
    t, _ = _load_tensors(wfile)
    _need(t, ("W_E", "b_E", "W_D"), wfile)
    W_E, W_D = t["W_E"].float(), t["W_D"].float()
    d, n = W_E.shape
    if int(cfg["d_model"]) != d or W_D.shape != (n, d):
        raise UsageError(f"{path}: W_E {tuple(W_E.shape)} / W_D {tuple(W_D.shape)} do not fit d_model {cfg['d_model']}")
    n_cfg = int(d * float(cfg.get("expansion_factor", n / d)))
    if n_cfg != n:
        raise UsageError(f"{path}: d_model x expansion_factor = {n_cfg} latents, weights have {n}")
    hook = cfg["hook_point_in"]
    scale = 1.0
    if cfg.get("norm_activation", "dataset-wise") == "dataset-wise":
        key = f"dataset_average_activation_norm.{hook}"
        norm = float(t[key]) if key in t else float("nan")
        if not (math.isfinite(norm) and norm > 0):
            raise UsageError(f"{wfile}: norm_activation is dataset-wise but {key} is missing or not positive")
        scale = math.sqrt(d) / norm
    act = activation or str(cfg.get("act_fn", "relu")).lower()
    threshold = None
    if "activation_function.log_jumprelu_threshold" in t:
        threshold = t["activation_function.log_jumprelu_threshold"].float().exp()
    if act == "jumprelu" and threshold is None:
        raise UsageError(f"{wfile}: JumpReLU but no activation_function.log_jumprelu_threshold")
    if act == "topk" and k is None:
        k = int(cfg.get("top_k", DEFAULT_TOP_K))
    gate = W_D.norm(dim=1) if cfg.get("sparsity_include_decoder_norm", True) else None
    # The decoder is not kept: only its row norms (the gate) are used.
    return dict(W_enc=W_E, b_enc=t["b_E"], activation=act, k=k, threshold=threshold, gate=gate, input_scale=scale,
                source={"hook_point_in": hook})
