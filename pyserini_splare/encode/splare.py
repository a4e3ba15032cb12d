"""SPLARE: sparse latent representations from an LLM's residual stream through a frozen SAE.

Formal et al., "Learning Sparse Retrieval with Sparse Autoencoders" (ICLR 2026): ``w_i = SAE_enc(h_i^(l))``
pooled as SPLADE. No public SPLARE checkpoint exists, so docs/splare-checkpoint.md defines one;
:func:`write_checkpoint` is the one writer of that directory (``SparseModel.save``, ``train.sae``, the demo and
``encode.splare_checkpoint`` all call it).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import asdict
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field
from pydantic.dataclasses import dataclass

from .._errors import UsageError
from .._schemas import STRICT, validated
from ..vectors import PrefixedSpace
from .batching import torch_dtype
from .checkpoint_config import TrunkCheckpointConfig
from .lengths import lengths, reject_unknown
from .model import SparseModel
from .modules.sae import ACTIVATIONS, SAE_FORMATS, hook_layer
from .modules.trunk import resolve_path

CONFIG_FILE = "splare_config.json"
CONFIG_FORMAT = "pyserini_splare.splare/1"
LATENT_PREFIX = "L"  # terms L0 .. L{n-1}: short ASCII, safe for Anserini -pretokenized and Seismic


@dataclass(config=STRICT)
class SaeSpec:
    path: str = Field(description="SAE directory/file (relative paths: inside the checkpoint dir), or "
                                  "hf://OWNER/REPO/SUBFOLDER (fetched on first load)")
    format: Literal.__getitem__(SAE_FORMATS) = Field("auto", description=f"one of {SAE_FORMATS}")
    activation: Literal.__getitem__(ACTIVATIONS) | None = Field(None, description=f"override: one of {ACTIVATIONS}")
    k: Annotated[int, Field(gt=0, strict=True)] | None = Field(None, description="TopK's k (override)")


@dataclass(config=STRICT)
class SplareConfig(TrunkCheckpointConfig):
    """What ``splare_config.json`` holds (JSON keys = field names)."""

    backbone: str = Field(description="HF hub id or local path of the causal LLM")
    layer: Annotated[int, Field(ge=0, strict=True)] = Field(
        description="0-indexed block whose output the SAE reads (Llama Scope L{n}R -> n)")
    sae: SaeSpec = Field(description="the frozen SAE")
    lora: str | None = Field(None, description="peft LoRA adapter dir trained on the cut trunk")
    exclude_bos: bool = Field(False, description=(
        "leave the first (BOS) token out of pooling: its attention-sink activation is huge and, "
        "under causal attention, identical for every text"))
    exclude_special_tokens: bool = Field(False, description=(
        "leave every special token out of pooling (a BERT trunk's [CLS]/[SEP], whose states are "
        "nearly the same for every text)"))
    format: str = CONFIG_FORMAT

    FILE: ClassVar[str] = CONFIG_FILE
    KIND: ClassVar[str] = "SPLARE"


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


def _portable(path: str | None, directory: str, base: str | None) -> str | None:
    """A path recorded so the checkpoint loads from anywhere: a part inside ``directory`` stays relative,
    ``hf://`` and hub ids stay as given, another local path (relative to ``base``) becomes absolute."""
    if not path or path.startswith(HF_SCHEME):
        return path
    if not os.path.isabs(path) and os.path.exists(os.path.join(directory, path)):
        return path
    local = resolve_path(path, base)
    return os.path.abspath(local) if os.path.exists(local) else path


def write_checkpoint(directory: str | os.PathLike, config: SplareConfig | Mapping[str, Any], *,
                     base: str | None = None, sae=None) -> SplareConfig:
    """Write a SPLARE checkpoint's ``splare_config.json`` into ``directory`` (the one writer); returns the
    config written.

    ``config``: a :class:`SplareConfig` or its fields as a dict (validated). Paths are recorded portably
    (docs/splare-checkpoint.md, "Making a checkpoint"); relative ones are resolved against ``base``, the
    directory the config came from. ``sae``: an SAE module built in memory, written to ``directory/sae``.
    """
    directory = os.fspath(directory)
    where = os.path.join(directory, CONFIG_FILE)
    fields_ = dict(config.to_json() if isinstance(config, SplareConfig) else config)
    if sae is not None:
        sae.save(os.path.join(directory, "sae"))
        fields_["sae"] = {"path": "sae", "format": "plain"}
    cfg = validated(SplareConfig, fields_, where, known=sorted(SplareConfig.__dataclass_fields__))
    cfg.backbone = _portable(cfg.backbone, directory, base)
    cfg.lora = _portable(cfg.lora, directory, base)
    cfg.sae.path = _portable(cfg.sae.path, directory, base)
    os.makedirs(directory, exist_ok=True)
    cfg.write(directory)
    return cfg


def save(model: SparseModel, directory: str, copy_trunk: bool = False) -> None:
    """A checkpoint of ``model`` through :func:`write_checkpoint`.

    The frozen SAE is referenced where it was loaded from (a 131k-latent SAE is GBs and never changes), or
    written to ``DIR/sae`` when built in memory; a trainable LoRA adapter goes to ``DIR/lora``; ``copy_trunk``
    writes the (cut) trunk and its tokenizer to ``DIR/trunk``, making the directory self-contained.
    """
    settings = model.settings
    trunk = model.trunk.config()  # backbone (as configured), layer, attention, lora (as loaded)
    sae = model.head.config()  # path and format it was loaded from, activation/k overrides
    if str(settings.sae.path).startswith(HF_SCHEME) and sae["path"]:
        sae = asdict(settings.sae)  # the hub reference, not this machine's cache folder
    in_memory = None if sae["path"] and (sae["path"].startswith(HF_SCHEME) or os.path.exists(sae["path"])) \
        else model.head
    if model.trunk.peft is not None:
        model.trunk.save_lora(os.path.join(directory, "lora"))
        trunk["lora"] = "lora"
    if copy_trunk:
        if model.trunk.peft is not None:
            raise ValueError("copy_trunk with a trainable adapter: save the adapter and reference the backbone")
        model.trunk.root.save_pretrained(os.path.join(directory, "trunk"))
        model.trunk.tokenizer.save_pretrained(os.path.join(directory, "trunk"))
        trunk["backbone"] = "trunk"
    skip = model.pooling.config()["skip"]
    write_checkpoint(directory, {
        **trunk, "sae": sae, "max_length_query": model.max_length_query, "max_length_doc": model.max_length_doc,
        "dtype": settings.dtype, "exclude_bos": skip == "bos" or settings.exclude_bos,
        "exclude_special_tokens": skip == "special"}, base=model.path if os.path.isdir(model.path) else None,
        sae=in_memory)


def copy_part(src: str, directory: str | os.PathLike, name: str) -> str:
    """Copy a checkpoint part (an SAE folder or file, an adapter folder) into ``directory``; its relative name."""
    dest = os.path.join(os.fspath(directory), name if os.path.isdir(src) else f"{name}{os.path.splitext(src)[1]}")
    (shutil.copytree if os.path.isdir(src) else shutil.copy2)(src, dest)
    return os.path.basename(dest)


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
