"""SAE head: a frozen sparse autoencoder's encoder (the SAE half of SPLARE), loaded from four on-disk formats.

SPLARE (Formal et al., ICLR 2026) maps each token's residual stream h_i at layer l to latents
w_i = SAE_enc(h_i). One formula covers every SAE we load (``x = h * input_scale - pre_bias``,
``pre = x @ W_enc + b_enc``, ``act = relu(pre) * m(pre * gate)`` with JumpReLU, TopK or ReLU as ``m``);
the formats (``llama_scope``, ``llamascopium`` via :mod:`.sae_llamascopium`, ``sae_lens``, ``plain``)
and their files: docs/splare-checkpoint.md, "SAE formats".
"""

from __future__ import annotations

import math
import os
from typing import Any, Literal

import torch

from ..._errors import UsageError
from .config import ConfigModule
from .names import ACTIVATIONS, SAE_FORMATS
from .sae_io import _load_tensors, _need, _read_json
from .sae_llamascopium import is_llamascopium_dir, llamascopium_params
from .sae_llamascopium import read_config as read_llamascopium_config
from .sae_llamascopium import weights_file as llamascopium_weights

Activation = Literal["jumprelu", "topk", "relu"]
PLAIN_FILE = "sae.safetensors"
PLAIN_FORMAT_TAG = "pyserini_splare.sae/1"


def hook_layer(hook: str | None) -> int | None:
    """``blocks.{n}.hook_resid_post`` (Llama Scope / TransformerLens naming) -> n; other hooks -> None."""
    parts = str(hook or "").split(".")
    if len(parts) == 3 and parts[0] == "blocks" and parts[1].isdigit() and parts[2] == "hook_resid_post":
        return int(parts[1])
    return None


class SAE(ConfigModule, torch.nn.Module):
    """The encoder half of an SAE (plus the decoder when known, for saving / training): a frozen head.

    Weights are buffers, not parameters: an optimizer never sees them, so training SPLARE leaves them
    bit-identical. Latents are computed in float32 whatever the trunk's dtype.
    """

    pooling = "max_log1p_relu"
    # Its weights are saved by :meth:`save` (the plain format); its config is a SPLARE checkpoint's ``sae``.
    config_keys = ("path", "format", "activation", "k")

    def __init__(self, W_enc, b_enc, *, activation: Activation = "relu", k: int | None = None,
                 threshold=None, gate=None, input_scale: float = 1.0, pre_bias=None,
                 W_dec=None, b_dec=None, source: dict | None = None):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        d, n = W_enc.shape
        if activation == "topk" and (k is None or not 0 < int(k) <= n):
            raise ValueError(f"topk activation needs 0 < k <= n_latents ({n}), got k={k!r}")
        if activation == "jumprelu" and threshold is None:
            raise ValueError("jumprelu activation needs a threshold")
        self.activation, self.k = activation, (int(k) if k is not None else None)
        self.input_scale = float(input_scale)
        self.source = dict(source or {})
        # None: TF32 matmuls on CUDA when the trunk's states arrive in bf16/fp16 (they carry 8 or 11 mantissa
        # bits, TF32 keeps 10 of W_enc's: no precision the input had is lost, and the 131k-wide product runs
        # ~7x faster than exact fp32 on an H100/H200). False: exact fp32 always; True: TF32 on CUDA always.
        self.tf32: bool | None = None
        f32 = torch.float32
        self.register_buffer("W_enc", W_enc.to(f32).contiguous())
        self.register_buffer("b_enc", b_enc.to(f32).reshape(n))
        thr = None if threshold is None else torch.as_tensor(threshold, dtype=f32).expand(n).clone()
        self.register_buffer("threshold", thr)
        self.register_buffer("gate", None if gate is None else gate.to(f32).reshape(n))
        self.register_buffer("pre_bias", None if pre_bias is None else pre_bias.to(f32).reshape(d))
        self.register_buffer("W_dec", None if W_dec is None else W_dec.to(f32))
        self.register_buffer("b_dec", None if b_dec is None else b_dec.to(f32).reshape(d))

    @property
    def d_model(self) -> int:
        return int(self.W_enc.shape[0])

    @property
    def n_latents(self) -> int:
        return int(self.W_enc.shape[1])

    def pre_activation(self, h):
        tf32 = h.is_cuda and (self.tf32 if self.tf32 is not None else h.dtype in (torch.bfloat16, torch.float16))
        x = h.to(self.W_enc.dtype) * self.input_scale
        if self.pre_bias is not None:
            x = x - self.pre_bias
        if not tf32:
            return x @ self.W_enc + self.b_enc
        prev = torch.backends.cuda.matmul.allow_tf32  # a process-wide switch: set for this product only
        torch.backends.cuda.matmul.allow_tf32 = True
        try:
            return x @ self.W_enc + self.b_enc
        finally:
            torch.backends.cuda.matmul.allow_tf32 = prev

    def forward(self, h):
        """(..., d_model) -> (..., n_latents) latents (computed in the SAE's float32)."""
        pre = self.pre_activation(h)
        s = pre if self.gate is None else pre * self.gate
        if self.activation == "jumprelu":
            keep = s > self.threshold
        elif self.activation == "topk":
            idx = s.topk(self.k, dim=-1).indices
            keep = torch.zeros_like(s, dtype=torch.bool).scatter_(-1, idx, True)
        else:
            keep = s > 0
        return torch.relu(pre) * keep

    def decode(self, z):
        if self.W_dec is None:
            raise ValueError("this SAE was loaded without its decoder")
        return z @ self.W_dec + (0 if self.b_dec is None else self.b_dec)

    def describe(self) -> dict[str, Any]:
        return {"d_model": self.d_model, "n_latents": self.n_latents, "activation": self.activation,
                "k": self.k, **self.source}

    def config(self) -> dict[str, Any]:
        """The ``sae`` keys of a SPLARE checkpoint: where the SAE is and how it was read."""
        activation, k = getattr(self, "overrides", (None, None))
        return {"path": self.source.get("path"), "format": self.source.get("format", "plain"),
                "activation": activation, "k": k}

    def save(self, path: str) -> str:
        """Write this SAE in the plain format (see :func:`save_sae`)."""
        return save_sae(self, path)




# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def detect_format(path: str) -> str:
    if os.path.isfile(path):
        if path.endswith(".safetensors"):
            return "plain"
        raise UsageError(f"SAE file {path!r} is not a .safetensors file")
    if not os.path.isdir(path):
        raise UsageError(f"SAE path {path!r} does not exist")
    if os.path.exists(os.path.join(path, "hyperparams.json")):
        return "llama_scope"
    if os.path.exists(os.path.join(path, "cfg.json")):
        return "sae_lens"
    if is_llamascopium_dir(path):
        return "llamascopium"
    if os.path.exists(os.path.join(path, PLAIN_FILE)):
        return "plain"
    raise UsageError(f"cannot tell the SAE format of {path!r}: no hyperparams.json (Llama Scope), config.json with "
                     f"an sae_type (llamascopium), cfg.json (sae_lens) or {PLAIN_FILE} (plain)")


def _llama_scope_weights(path: str) -> str:
    for cand in (os.path.join(path, "checkpoints", "final.safetensors"),
                 os.path.join(path, "final.safetensors"), os.path.join(path, PLAIN_FILE)):
        if os.path.exists(cand):
            return cand
    files = sorted(f for f in os.listdir(path) if f.endswith(".safetensors"))
    if len(files) == 1:
        return os.path.join(path, files[0])
    raise UsageError(f"Llama Scope SAE {path!r}: no checkpoints/final.safetensors")


def _load_llama_scope(path: str, activation: str | None, k: int | None):
    hp = _read_json(os.path.join(path, "hyperparams.json"))
    wfile = _llama_scope_weights(path)
    t, _ = _load_tensors(wfile)
    _need(t, ("encoder.weight", "encoder.bias", "decoder.weight"), wfile)
    W_enc = t["encoder.weight"].float().T  # (d_model, d_sae)
    d, n = W_enc.shape
    if int(hp.get("d_model", d)) != d or int(hp.get("d_sae", n)) != n:
        raise UsageError(f"{path}: hyperparams d_model/d_sae ({hp.get('d_model')}/{hp.get('d_sae')}) "
                         f"disagree with weights ({d}/{n})")
    W_dec = t["decoder.weight"].float()  # (d_model, d_sae)
    gate = W_dec.norm(dim=0) if hp.get("sparsity_include_decoder_norm", True) else None
    scale = 1.0
    norm_mode = hp.get("norm_activation", "dataset-wise")
    if norm_mode not in ("dataset-wise", "inference"):  # token-/batch-wise: a per-token or per-batch factor
        raise UsageError(f"{path}: norm_activation {norm_mode!r} is not supported (dataset-wise or inference)")
    if norm_mode == "dataset-wise":
        norms = hp.get("dataset_average_activation_norm") or {}
        norm_in = norms.get("in") if isinstance(norms, dict) else norms
        if not norm_in:
            raise UsageError(f"{path}: dataset-wise normalization but no dataset_average_activation_norm.in")
        scale = math.sqrt(d) / float(norm_in)
    act = activation or str(hp.get("act_fn", "jumprelu")).lower()
    threshold = None
    if "log_jumprelu_threshold" in t:
        threshold = t["log_jumprelu_threshold"].float().exp()
    elif hp.get("jump_relu_threshold") is not None:
        threshold = torch.tensor(float(hp["jump_relu_threshold"]))
    if act == "jumprelu" and threshold is None:
        raise UsageError(f"{path}: JumpReLU asked but no jump_relu_threshold / log_jumprelu_threshold")
    if act == "topk" and k is None:
        k = hp.get("top_k")
    b_dec = t.get("decoder.bias")
    pre_bias = b_dec if (b_dec is not None and hp.get("use_decoder_bias", True)
                         and hp.get("apply_decoder_bias_to_pre_encoder", False)) else None
    return SAE(W_enc, t["encoder.bias"], activation=act, k=k, threshold=threshold, gate=gate,
                    input_scale=scale, pre_bias=pre_bias, W_dec=None, b_dec=None,
                    source={"hook_point_in": hp.get("hook_point_in")})


def _load_llamascopium(path: str, activation: str | None, k: int | None):
    return SAE(**llamascopium_params(path, activation, k))


def _load_sae_lens(path: str, activation: str | None, k: int | None):
    cfg = _read_json(os.path.join(path, "cfg.json"))
    wfile = os.path.join(path, "sae_weights.safetensors")
    if not os.path.exists(wfile):
        raise UsageError(f"sae_lens SAE {path!r}: no sae_weights.safetensors")
    t, _ = _load_tensors(wfile)
    _need(t, ("W_enc", "b_enc"), wfile)
    norm = cfg.get("normalize_activations", "none") or "none"
    if norm != "none":
        raise UsageError(f"{path}: sae_lens normalize_activations={norm!r} is not supported (only 'none')")
    arch = str(cfg.get("architecture", "standard")).lower()
    default_act = {"standard": "relu", "jumprelu": "jumprelu", "topk": "topk"}.get(arch)
    if default_act is None and activation is None:
        raise UsageError(f"{path}: sae_lens architecture {arch!r} is not supported (standard, jumprelu, topk)")
    act = activation or default_act
    if act == "topk" and k is None:
        k = (cfg.get("activation_fn_kwargs") or {}).get("k", cfg.get("k"))
    b_dec = t.get("b_dec")
    pre_bias = b_dec if (b_dec is not None and cfg.get("apply_b_dec_to_input", False)) else None
    return SAE(t["W_enc"], t["b_enc"], activation=act, k=k, threshold=t.get("threshold"),
                    pre_bias=pre_bias, W_dec=t.get("W_dec"), b_dec=b_dec,
                    source={"hook_name": cfg.get("hook_name")})


def _load_plain(path: str, activation: str | None, k: int | None):
    wfile = os.path.join(path, PLAIN_FILE) if os.path.isdir(path) else path
    t, meta = _load_tensors(wfile)
    _need(t, ("W_enc", "b_enc"), wfile)
    act = activation or meta.get("activation", "relu")
    if k is None and meta.get("k"):
        k = int(meta["k"])
    b_dec = t.get("b_dec")
    apply_b = meta.get("apply_b_dec_to_input", "false").lower() == "true"
    return SAE(t["W_enc"], t["b_enc"], activation=act, k=k, threshold=t.get("threshold"),
                    gate=t.get("gate"), input_scale=float(meta.get("input_scale", 1.0)),
                    pre_bias=b_dec if (apply_b and b_dec is not None) else None,
                    W_dec=t.get("W_dec"), b_dec=b_dec)


def _shape(wfile: str, key: str) -> tuple[int, ...]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(wfile, framework="pt") as f:
            names = set(f.keys())  # a safe_open handle is not a dict: no `in`
            if key not in names:
                raise UsageError(f"SAE weights {wfile} lack {key}")
            return tuple(f.get_slice(key).get_shape())
    except (OSError, SafetensorError) as e:
        raise UsageError(f"cannot read SAE weights {wfile}: {e}") from None


def inspect_sae(path: str, format: str = "auto") -> dict[str, Any]:
    """Format, d_model, n_latents and hook point of an SAE, read from headers only (no weights loaded:
    a 131k-latent Llama Scope SAE is 4 GB)."""
    if format not in SAE_FORMATS:
        raise ValueError(f"SAE format must be one of {SAE_FORMATS}, got {format!r}")
    path = os.fspath(path)
    fmt = detect_format(path) if format == "auto" else format
    if fmt == "llama_scope":
        hp = _read_json(os.path.join(path, "hyperparams.json"))
        n, d = _shape(_llama_scope_weights(path), "encoder.weight")
        hook = hp.get("hook_point_in")
    elif fmt == "llamascopium":
        d, n = _shape(llamascopium_weights(path), "W_E")
        hook = read_llamascopium_config(path)["hook_point_in"]
    elif fmt == "sae_lens":
        cfg = _read_json(os.path.join(path, "cfg.json"))
        d, n = _shape(os.path.join(path, "sae_weights.safetensors"), "W_enc")
        hook = cfg.get("hook_name")
    else:
        d, n = _shape(os.path.join(path, PLAIN_FILE) if os.path.isdir(path) else path, "W_enc")
        hook = None
    return {"format": fmt, "d_model": int(d), "n_latents": int(n), "hook_point_in": hook, "layer": hook_layer(hook)}


def load_sae(path: str, format: str = "auto", activation: str | None = None, k: int | None = None,
             device: str = "cpu"):
    """Load a frozen SAE encoder. ``activation``/``k`` override what the checkpoint says."""
    if format not in SAE_FORMATS:
        raise ValueError(f"SAE format must be one of {SAE_FORMATS}, got {format!r}")
    if activation is not None and activation not in ACTIVATIONS:
        raise ValueError(f"SAE activation must be one of {ACTIVATIONS}, got {activation!r}")
    path = os.fspath(path)
    fmt = detect_format(path) if format == "auto" else format
    loader = {"llama_scope": _load_llama_scope, "llamascopium": _load_llamascopium, "sae_lens": _load_sae_lens,
              "plain": _load_plain}[fmt]
    try:
        sae = loader(path, activation, k)
    except ValueError as e:
        raise UsageError(f"SAE {path!r}: {e}") from None
    sae.source.update({"path": path, "format": fmt})
    sae.overrides = (activation, k)  # what config() records: the checkpoint's own settings stay implicit
    sae.to(device).eval()
    return sae


def save_sae(sae, path: str) -> str:
    """Write ``sae`` in the plain format (a ``.safetensors`` file; a directory gets ``sae.safetensors``)."""
    from safetensors.torch import save_file

    path = os.fspath(path)
    if os.path.isdir(path) or not path.endswith(".safetensors"):
        os.makedirs(path, exist_ok=True)
        path = os.path.join(path, PLAIN_FILE)
    tensors = {"W_enc": sae.W_enc, "b_enc": sae.b_enc}
    for name in ("threshold", "gate", "W_dec", "b_dec"):
        if getattr(sae, name) is not None:
            tensors[name] = getattr(sae, name)
    meta = {"format": PLAIN_FORMAT_TAG, "activation": sae.activation, "k": str(sae.k or ""),
            "input_scale": repr(sae.input_scale), "apply_b_dec_to_input": str(sae.pre_bias is not None).lower()}
    if sae.pre_bias is not None and sae.b_dec is None:
        tensors["b_dec"] = sae.pre_bias
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    # safetensors writes by path: write beside the target, then rename (no half-written SAE on failure).
    tmp = path + ".partial"
    try:
        save_file(tensors, tmp, metadata=meta)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


# --------------------------------------------------------------------------------------------
# Training a small TopK SAE (for the offline demo: no public SAE fits a tiny trunk)
# --------------------------------------------------------------------------------------------


def train_topk_sae(hidden_states, n_latents: int, k: int, steps: int = 500, lr: float = 1e-3,
                   seed: int = 0, batch_size: int = 1024):
    """Train a plain TopK SAE (Gao et al., 2024, "Scaling and evaluating sparse autoencoders") on
    ``hidden_states`` (n, d): z = TopK(relu(W_enc (x - b_dec) + b_enc)), x̂ = z W_dec + b_dec, MSE loss,
    Adam, decoder rows renormalized to unit norm after every step. Deterministic for a given seed on CPU.
    Returns a frozen SAE (activation ``topk``) that :func:`save_sae` writes in the plain format.
    """
    if hidden_states.ndim != 2:
        raise ValueError(f"hidden_states must be (n, d), got shape {tuple(hidden_states.shape)}")
    if not 0 < k <= n_latents:
        raise ValueError(f"need 0 < k <= n_latents, got k={k}, n_latents={n_latents}")
    x = hidden_states.detach().float().cpu()
    n, d = x.shape
    g = torch.Generator().manual_seed(seed)
    W_dec = torch.randn(n_latents, d, generator=g)
    W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)
    W_dec = torch.nn.Parameter(W_dec)
    W_enc = torch.nn.Parameter(W_dec.detach().T.clone())  # tied init (Gao et al.)
    b_enc = torch.nn.Parameter(torch.zeros(n_latents))
    b_dec = torch.nn.Parameter(x.median(dim=0).values.clone())
    opt = torch.optim.Adam([W_enc, b_enc, W_dec, b_dec], lr=lr)
    for _ in range(int(steps)):
        idx = torch.randint(0, n, (min(batch_size, n),), generator=g)
        xb = x[idx]
        pre = torch.relu((xb - b_dec) @ W_enc + b_enc)
        top = pre.topk(k, dim=-1)
        z = torch.zeros_like(pre).scatter_(-1, top.indices, top.values)
        loss = ((z @ W_dec + b_dec - xb) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            W_dec /= W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8)
    with torch.no_grad():
        return SAE(W_enc.detach().clone(), b_enc.detach().clone(), activation="topk", k=k,
                        pre_bias=b_dec.detach().clone(), W_dec=W_dec.detach().clone(),
                        b_dec=b_dec.detach().clone(), source={"trained": "train_topk_sae"}).eval()
