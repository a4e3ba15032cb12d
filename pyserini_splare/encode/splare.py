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

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .._cli import UsageError
from ..vectors import PrefixedSpace, SparseVector
from ._base import Kind, SparseEncoder, check_kind
from .backbone import ATTENTION_MODES, DTYPES, resolve_path
from .sae import ACTIVATIONS, SAE_FORMATS

CONFIG_FILE = "splare_config.json"
CONFIG_FORMAT = "pyserini_splare.splare/1"
LATENT_PREFIX = "L"  # terms L0 .. L{n-1}: short ASCII, safe for Anserini -pretokenized and Seismic

# Tokens per chunk when applying the SAE: (batch x chunk x n_latents) float32 latents are materialized
# one chunk at a time (131,072 latents x 8 x 128 tokens = 0.5 GB) and max-pooled incrementally, which is
# exact because log1p(relu(.)) >= 0 makes the max over chunks the max over all tokens.
SAE_TOKEN_CHUNK = 128


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
class SplareConfig:
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
    format: str = CONFIG_FORMAT

    def __post_init__(self):
        if isinstance(self.sae, dict):
            self.sae = SaeSpec(**self.sae)
        if self.attention not in ATTENTION_MODES:
            raise ValueError(f"attention must be one of {ATTENTION_MODES}, got {self.attention!r}")
        if str(self.dtype).lower() not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")
        if int(self.layer) < 0:
            raise ValueError(f"layer must be >= 0, got {self.layer}")
        for name in ("max_length_query", "max_length_doc"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any], where: str = CONFIG_FILE) -> SplareConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise UsageError(f"{where}: unknown keys {unknown} (known: {sorted(known)})")
        try:
            return cls(**obj)
        except (TypeError, ValueError) as e:
            raise UsageError(f"{where}: {e}") from None

    @classmethod
    def read(cls, checkpoint_dir: str) -> SplareConfig:
        path = os.path.join(checkpoint_dir, CONFIG_FILE)
        try:
            with open(path, encoding="utf-8") as f:
                obj = json.load(f)
        except FileNotFoundError:
            raise UsageError(f"{checkpoint_dir!r} is not a SPLARE checkpoint: no {CONFIG_FILE}") from None
        except (OSError, json.JSONDecodeError) as e:
            raise UsageError(f"cannot read {path}: {e}") from None
        return cls.from_json(obj, path)

    def write(self, checkpoint_dir: str) -> str:
        from .._cli import atomic_file

        path = os.path.join(checkpoint_dir, CONFIG_FILE)
        with atomic_file(path) as f:
            json.dump(self.to_json(), f, indent=2)
            f.write("\n")
        return path


def hook_layer(hook: str | None) -> int | None:
    """``blocks.{n}.hook_resid_post`` (Llama Scope / TransformerLens naming) -> n; other hooks -> None."""
    parts = str(hook or "").split(".")
    if len(parts) == 3 and parts[0] == "blocks" and parts[1].isdigit() and parts[2] == "hook_resid_post":
        return int(parts[1])
    return None


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first), to minimise padding."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[s : s + batch_size] for s in range(0, len(order), batch_size)]


def pooled_in_chunks(head, hidden, mask, chunk: int):
    """max_i log1p(relu(head(hidden_i))) over real tokens, computed ``chunk`` tokens at a time."""
    from .pooling import max_log1p_relu

    out = None
    for s in range(0, hidden.shape[1], chunk):
        part = max_log1p_relu(head(hidden[:, s : s + chunk]), mask[:, s : s + chunk])
        out = part if out is None else out.maximum(part)
    return out


def rows_to_vectors(pooled) -> list[SparseVector]:
    arr = pooled.float().cpu().numpy()
    return [SparseVector.from_dense(row) for row in arr]


class SplareEncoder(SparseEncoder):
    """Trunk cut at ``layer`` -> frozen SAE -> max log1p(ReLU) over tokens -> ``L{j}`` terms."""

    def __init__(self, trunk, sae, config: SplareConfig, path: str, batch_size: int = 32):
        if sae.d_model != trunk.hidden_size:
            raise UsageError(f"SAE d_model {sae.d_model} does not match the trunk's hidden size {trunk.hidden_size} "
                             f"({config.backbone})")
        hook = str(sae.source.get("hook_point_in") or "")
        if hook_layer(hook) not in (None, config.layer):
            raise UsageError(f"the SAE reads {hook} but the checkpoint cuts the trunk after block {config.layer}")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.trunk, self.sae, self.config, self.path = trunk, sae, config, path
        self.batch_size = int(batch_size)
        self.space = PrefixedSpace(LATENT_PREFIX, sae.n_latents, name=f"splare:{os.path.basename(os.path.normpath(path))}")

    def max_length(self, kind: Kind) -> int:
        check_kind(kind)
        return self.config.max_length_query if kind == "query" else self.config.max_length_doc

    def token_latents(self, input_ids, attention_mask):
        """(batch, tokens, n_latents) SAE latents (for explanation and tests)."""
        import torch

        with torch.inference_mode():
            return self.sae(self.trunk.hidden(input_ids, attention_mask))

    def _pool_mask(self, input_ids, attention_mask):
        mask = attention_mask.clone()
        bos = self.trunk.tokenizer.bos_token_id
        if self.config.exclude_bos and bos is not None:
            # Right padding: position 0 is the first token; drop it only if it is BOS (Qwen adds none).
            mask[:, 0] = mask[:, 0] * (input_ids[:, 0] != bos).to(mask.dtype)
        return mask

    def encode(self, texts: Sequence[str], kind: Kind = "doc") -> list[SparseVector]:
        import torch

        texts = list(texts)
        if not texts:
            return []
        max_len = self.max_length(kind)
        tok = self.trunk.tokenizer
        lengths = [len(x) for x in tok(texts, truncation=True, max_length=max_len)["input_ids"]]
        out: list[SparseVector | None] = [None] * len(texts)
        for idx in sorted_batches(lengths, self.batch_size):
            enc = self.trunk.tokenize([texts[i] for i in idx], max_len)
            with torch.inference_mode():
                hidden = self.trunk.hidden(enc["input_ids"], enc["attention_mask"])
                mask = self._pool_mask(enc["input_ids"], enc["attention_mask"]).to(hidden.device)
                pooled = pooled_in_chunks(self.sae, hidden, mask, SAE_TOKEN_CHUNK)
            for i, vec in zip(idx, rows_to_vectors(pooled)):
                out[i] = vec
        return out  # type: ignore[return-value]

    def spec(self) -> dict[str, Any]:
        return {"type": "splare", "path": self.path, "backbone": self.config.backbone, "layer": self.config.layer,
                "sae": self.sae.describe(), "lora": self.config.lora, "attention": self.config.attention,
                "max_length_query": self.config.max_length_query, "max_length_doc": self.config.max_length_doc,
                "exclude_bos": self.config.exclude_bos}


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


def load_splare(path_or_id: str, device: str = "cpu", dtype: Any = None, max_length: int | None = None,
                trust_remote_code: bool = False, batch_size: int = 32, **_ignored) -> SplareEncoder:
    """Load a SPLARE checkpoint directory (see docs/splare-checkpoint.md).

    ``dtype`` overrides the config's dtype (None: float32 on CPU, the config's dtype elsewhere);
    ``max_length`` overrides both max lengths.
    """
    from .backbone import load_trunk
    from .sae import load_sae

    path = os.fspath(path_or_id)
    if os.path.isdir(path):
        path = os.path.abspath(path)  # spec() is recorded in meta.json and read back from other directories
    if not os.path.isdir(path):
        raise UsageError(f"SPLARE checkpoint {path!r} is not a directory (see docs/splare-checkpoint.md)")
    cfg = SplareConfig.read(path)
    if max_length is not None:
        if int(max_length) <= 0:
            raise UsageError(f"max_length must be positive, got {max_length}")
        cfg.max_length_query = cfg.max_length_doc = int(max_length)
    if dtype is None:
        dtype = "float32" if str(device).startswith("cpu") else cfg.dtype
    sae = load_sae(resolve_sae_path(cfg.sae.path, path), cfg.sae.format, cfg.sae.activation, cfg.sae.k,
                   device=device)
    trunk = load_trunk(resolve_path(cfg.backbone, path), layer=int(cfg.layer), attention=cfg.attention,
                       lora=resolve_path(cfg.lora, path) if cfg.lora else None, device=device, dtype=dtype,
                       trust_remote_code=trust_remote_code)
    return SplareEncoder(trunk, sae, cfg, path, batch_size=batch_size)
