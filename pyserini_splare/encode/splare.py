"""SPLARE: sparse latent representations from an LLM's residual stream through a frozen SAE.

Formal et al., "Learning Sparse Retrieval with Sparse Autoencoders" (SPLARE, ICLR 2026): for token i,
w_i = SAE_enc(h_i^(l)) where h^(l) is the residual stream after block l; the document vector is
u_j = max_i log(1 + ReLU(w_ij)) (SPLADE pooling), scored by dot product. SPLARE-7B = Llama-3.1-8B cut
after block 26, Llama Scope residual SAE ``L26R`` of width 131,072 (JumpReLU), bidirectional attention,
LoRA r=64 on the trunk, SAE frozen; no instruction prefix; max length 512 in training, 1024 at eval.

No public SPLARE checkpoint exists, so this module defines one (docs/splare-checkpoint.md): a directory
with ``splare_config.json`` (:class:`SplareConfig`), optionally holding the SAE and LoRA adapter;
``scripts/make_splare_checkpoint.py`` assembles one from public parts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .._errors import UsageError
from ..vectors import PrefixedSpace
from .batching import DTYPES, torch_dtype
from .checkpoint_config import CheckpointConfig
from .model import SparseModel, lengths, reject_unknown
from .modules.sae import ACTIVATIONS, SAE_FORMATS, hook_layer
from .modules.trunk import ATTENTION_MODES, resolve_path

CONFIG_FILE = "splare_config.json"
CONFIG_FORMAT = "pyserini_splare.splare/1"
LATENT_PREFIX = "L"  # terms L0 .. L{n-1}: short ASCII, safe for Anserini -pretokenized and Seismic



@dataclass
class SaeSpec:
    path: str = field(metadata={"help": "SAE directory/file (relative paths: inside the checkpoint dir)"})
    format: str = field(default="auto", metadata={"help": f"one of {SAE_FORMATS}"})
    activation: str | None = field(default=None, metadata={"help": f"override: one of {ACTIVATIONS}"})
    k: int | None = field(default=None, metadata={"help": "TopK's k (override)"})

    def __post_init__(self):
        if self.format not in SAE_FORMATS:
            raise ValueError(f"sae.format must be one of {SAE_FORMATS}, got {self.format!r}")
        if self.activation is not None and self.activation not in ACTIVATIONS:
            raise ValueError(f"sae.activation must be one of {ACTIVATIONS}, got {self.activation!r}")


@dataclass
class SplareConfig(CheckpointConfig):
    """What ``splare_config.json`` holds (JSON keys = field names)."""

    backbone: str = field(metadata={"help": "HF hub id or local path of the causal LLM"})
    layer: int = field(metadata={"help": "0-indexed block whose output the SAE reads (Llama Scope L{n}R -> n)"})
    sae: SaeSpec = field(metadata={"help": "the frozen SAE"})
    lora: str | None = field(default=None, metadata={"help": "peft LoRA adapter dir trained on the cut trunk"})
    attention: str = field(default="causal", metadata={"help": f"one of {ATTENTION_MODES}"})
    max_length_query: int = field(default=512, metadata={"help": "query truncation (tokens)"})
    max_length_doc: int = field(default=1024, metadata={"help": "document truncation (tokens)"})
    dtype: str = field(default="bfloat16", metadata={"help": f"trunk dtype on GPU; one of {sorted(DTYPES)}"})
    exclude_bos: bool = field(default=False, metadata={
        "help": "leave the first (BOS) token out of pooling: its attention-sink activation is huge and, "
                "under causal attention, identical for every text"})
    exclude_special_tokens: bool = field(default=False, metadata={
        "help": "leave every special token out of pooling (a BERT trunk's [CLS]/[SEP], whose states are "
                "nearly the same for every text)"})
    format: str = CONFIG_FORMAT

    FILE: ClassVar[str] = CONFIG_FILE
    KIND: ClassVar[str] = "SPLARE"

    def __post_init__(self):
        if isinstance(self.sae, dict):
            self.sae = SaeSpec(**self.sae)
        if int(self.layer) < 0:
            raise ValueError(f"layer must be >= 0, got {self.layer}")
        self.check_trunk_settings()


HF_SCHEME = "hf://"


def resolve_sae_path(sae_path: str, checkpoint_dir: str) -> str:
    """A local SAE path (relative to the checkpoint), or ``hf://OWNER/REPO/SUBFOLDER`` fetched once into the
    Hugging Face cache (only that subfolder: Llama Scope repos hold one SAE per layer, ~1-4 GB each)."""
    if not sae_path.startswith(HF_SCHEME):
        return resolve_path(sae_path, checkpoint_dir)
    parts = sae_path[len(HF_SCHEME):].strip("/").split("/")
    if len(parts) < 2:
        raise UsageError(f"SAE path {sae_path!r}: expected hf://OWNER/REPO[/SUBFOLDER]")
    repo, sub = "/".join(parts[:2]), "/".join(parts[2:])
    try:
        from huggingface_hub import snapshot_download

        local = snapshot_download(repo, allow_patterns=[f"{sub}/*", f"{sub}/**"] if sub else None)
    except Exception as e:  # noqa: BLE001 - hub errors (offline, gated, missing) all mean "cannot fetch"
        raise UsageError(f"cannot fetch SAE {sae_path}: {e}") from None
    return os.path.join(local, sub) if sub else local


def spec(model: SparseModel) -> dict[str, Any]:
    cfg = model.settings
    out = {"type": "splare", "path": model.path, "backbone": cfg.backbone, "layer": cfg.layer,
           "sae": model.head.describe(), "lora": cfg.lora, "attention": cfg.attention,
           "max_length_query": model.max_length_query, "max_length_doc": model.max_length_doc,
           "exclude_bos": cfg.exclude_bos}
    if cfg.exclude_special_tokens:
        out["exclude_special_tokens"] = True
    return out


def save(model: SparseModel, directory: str, copy_trunk: bool = False) -> None:
    """``splare_config.json`` + what is not already on disk elsewhere.

    The frozen SAE is referenced where it was loaded from (a 131k-latent SAE is GBs; it never changes),
    or written in the plain format to ``DIR/sae`` when it was built in memory. A trainable LoRA adapter is
    written to ``DIR/lora``; ``copy_trunk`` writes the (cut) trunk and its tokenizer to ``DIR/trunk``,
    making the directory self-contained.
    """
    cfg = model.settings
    base = model.path if os.path.isdir(model.path) else None
    sae_src = model.head.source.get("path")
    if str(cfg.sae.path).startswith(HF_SCHEME) and sae_src:
        sae = SaeSpec(cfg.sae.path, cfg.sae.format, cfg.sae.activation, cfg.sae.k)
    elif sae_src and os.path.exists(sae_src):
        sae = SaeSpec(os.path.abspath(sae_src), model.head.source.get("format", cfg.sae.format),
                      cfg.sae.activation, cfg.sae.k)
    else:
        model.head.save(os.path.join(directory, "sae"))
        sae = SaeSpec("sae", "plain")
    lora = cfg.lora
    if model.trunk.peft is not None:
        model.trunk.save_lora(os.path.join(directory, "lora"))
        lora = "lora"
    elif lora:
        lora = os.path.abspath(resolve_path(lora, base))
    backbone = resolve_path(cfg.backbone, base)
    backbone = os.path.abspath(backbone) if os.path.exists(backbone) else cfg.backbone
    if copy_trunk:
        if model.trunk.peft is not None:
            raise ValueError("copy_trunk with a trainable adapter: save the adapter and reference the backbone")
        model.trunk.root.save_pretrained(os.path.join(directory, "trunk"))
        model.trunk.tokenizer.save_pretrained(os.path.join(directory, "trunk"))
        backbone = "trunk"
    out = SplareConfig(backbone=backbone, layer=cfg.layer, sae=sae, lora=lora, attention=cfg.attention,
                       max_length_query=model.max_length_query, max_length_doc=model.max_length_doc,
                       dtype=cfg.dtype, exclude_bos=cfg.exclude_bos,
                       exclude_special_tokens=cfg.exclude_special_tokens)
    out.write(directory)


def build_splare(trunk, sae, config: SplareConfig, path: str, *, max_length_query: int | None = None,
                 max_length_doc: int | None = None, batch_size: int = 32) -> SparseModel:
    """Compose a SPLARE model: ``trunk`` (cut at ``config.layer``) -> ``sae`` -> max log1p(ReLU) pooling."""
    from .modules.pooling import MaxLog1pReluPooling

    if sae.d_model != trunk.hidden_size:
        raise UsageError(f"SAE d_model {sae.d_model} does not match the trunk's hidden size {trunk.hidden_size} "
                         f"({config.backbone})")
    hook = str(sae.source.get("hook_point_in") or "")
    if hook_layer(hook) not in (None, config.layer):
        raise UsageError(f"the SAE reads {hook} but the checkpoint cuts the trunk after block {config.layer}")
    skip = "special" if config.exclude_special_tokens else "bos" if config.exclude_bos else "none"
    # A checkpoint's default 512/1024 must not exceed what the trunk can embed (a BERT trunk has 512 positions).
    q, d, over = lengths((config.max_length_query, config.max_length_doc), max_length_query, max_length_doc,
                         trunk.max_positions)
    space = PrefixedSpace(LATENT_PREFIX, sae.n_latents, name=f"splare:{os.path.basename(os.path.normpath(path))}")
    return SparseModel(trunk, sae, MaxLog1pReluPooling(skip=skip), space=space, kind="splare", path=path,
                       max_length_query=q, max_length_doc=d, settings=config, overrides=over, batch_size=batch_size)


def load_splare(path_or_id: str, device: str = "cpu", dtype: Any = None, max_length_query: int | None = None,
                max_length_doc: int | None = None, trust_remote_code: bool = False, batch_size: int = 32,
                merge_lora: bool = True, **_ignored) -> SparseModel:
    """Load a SPLARE checkpoint directory (see docs/splare-checkpoint.md).

    ``dtype`` overrides the config's dtype (None: float32 on CPU, the config's dtype elsewhere);
    ``max_length_query`` / ``max_length_doc`` override one side each (recorded in the spec).
    """
    reject_unknown(_ignored, "splare")
    from .modules.sae import load_sae
    from .modules.trunk import load_trunk

    path = os.fspath(path_or_id)
    if os.path.isdir(path):
        path = os.path.abspath(path)  # spec() is recorded in meta.json and read back from other directories
    if not os.path.isdir(path):
        raise UsageError(f"SPLARE checkpoint {path!r} is not a directory (see docs/splare-checkpoint.md)")
    cfg = SplareConfig.read(path)
    sae = load_sae(resolve_sae_path(cfg.sae.path, path), cfg.sae.format, cfg.sae.activation, cfg.sae.k,
                   device=device)
    trunk = load_trunk(resolve_path(cfg.backbone, path), layer=int(cfg.layer), attention=cfg.attention,
                       lora=resolve_path(cfg.lora, path) if cfg.lora else None, device=device,
                       dtype=torch_dtype(dtype, device, cfg.dtype), trust_remote_code=trust_remote_code,
                       merge_lora=merge_lora, backbone=cfg.backbone)
    return build_splare(trunk, sae, cfg, path, max_length_query=max_length_query, max_length_doc=max_length_doc,
                        batch_size=batch_size)
