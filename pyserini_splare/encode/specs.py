"""Naming an encoder: ``KIND:PATH`` specs and model directories, and loading the encoder a spec names.

Kinds are the keys of :data:`~.kinds.ENCODERS` (an explicit table: no guessing from substrings of model
names); a directory names its kind through its config files (:func:`resolve_spec`, docs/encoders.md): the
kind table's ``config_file`` of each kind, or :data:`ENCODER_CONFIG`.
"""

from __future__ import annotations

import json
from pathlib import Path

from .._errors import UsageError
from .._lazy import load_callable
from .base import DenseEncoder, Kind, SparseEncoder
from .kinds import ENCODERS, kind_names

# A directory holding this file names its encoder kind: {"type": "splare", ...}. SPLARE checkpoints
# (docs/splare-checkpoint.md) carry one; any model folder can be given one to be named by its path.
ENCODER_CONFIG = "pyserini_splare_encoder.json"


def _kind_files() -> dict[str, str]:
    """Config file -> kind, from the kind table (checked in its order)."""
    return {k.config_file: name for name, k in ENCODERS.items() if k.config_file}


def _kind_from_dir(d: Path) -> str:
    """The encoder kind a model directory declares (see :data:`ENCODER_CONFIG`)."""
    kind_files = _kind_files()
    for name in (ENCODER_CONFIG, *kind_files):
        p = d / name
        if p.is_file():
            if name != ENCODER_CONFIG:
                return kind_files[name]
            try:
                kind = json.loads(p.read_text(encoding="utf-8")).get("type")
            except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as e:
                raise UsageError(f"{p}: malformed encoder config ({e})") from None
            if kind not in ENCODERS:
                raise UsageError(f"{p}: unknown encoder type {kind!r} (known: {kind_names()})")
            return kind
    cfg = d / "config.json"
    if cfg.is_file():
        try:
            hf = json.loads(cfg.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UsageError(f"{cfg}: malformed JSON ({e})") from None
        archs = hf.get("architectures") or []
        if "multilingual_encoder_checkpoint" in hf:
            return "milco"  # MILCO's reference checkpoint layout (omai-research/milco-650m)
        if any(str(a).endswith("ForMaskedLM") for a in archs):
            return "splade"  # a masked-LM checkpoint is a BERT-style SPLADE (naver/splade-v3 family)
        raise UsageError(f"{d}: its config.json ({', '.join(map(str, archs)) or hf.get('model_type', '?')}) does not "
                         f"say which encoder it is: name it explicitly, e.g. qwen3-embed:{d} (kinds: {kind_names()})")
    raise UsageError(f"{d}: checkpoint directory has no config ({ENCODER_CONFIG} or config.json): "
                     f"give an explicit spec KIND:PATH (kinds: {kind_names()})")


def resolve_spec(spec: str) -> tuple[str, str]:
    """``kind:path`` -> (kind, path); a directory -> (kind from its config, path). UsageError otherwise."""
    if not isinstance(spec, str) or not spec.strip():
        raise UsageError(f"empty encoder spec (expected KIND:PATH, kinds: {kind_names()})")
    kind, sep, rest = spec.partition(":")
    if sep and kind in ENCODERS:
        if not rest:
            raise UsageError(f"encoder spec {spec!r} names no model path or hub id")
        # A path (not a hub id "namespace/name") must be a local folder: otherwise the model loaders
        # hand it to the hub client, whose "Repo id must be in the form ..." hides a typo in a path.
        local = Path(rest).expanduser()
        if rest.startswith(("/", ".", "~")) or rest.count("/") > 1 or local.exists():
            if not local.exists():
                raise UsageError(f"encoder {kind}: model directory {rest} does not exist")
            if not local.is_dir():
                raise UsageError(f"encoder {kind}: {rest} is not a model directory (a file)")
        return kind, rest
    p = Path(spec)
    if p.is_dir():
        return _kind_from_dir(p), spec
    if sep and "/" not in kind and not p.exists():
        raise UsageError(f"unknown encoder kind {kind!r} in {spec!r} (known: {kind_names()})")
    raise UsageError(f"encoder spec {spec!r} is neither KIND:PATH (kinds: {kind_names()}) nor a model directory")


def load_encoder(spec: str, **options) -> SparseEncoder | DenseEncoder:
    """Build the encoder named by ``spec``.

    ``options``: device, dtype, batch_size, trust_remote_code, ``max_length_query`` / ``max_length_doc`` (None: the
    model's own, docs/encoders.md); ``max_length`` (the older single option) sets both sides.
    """
    kind, path = resolve_spec(spec)
    max_length = options.pop("max_length", None)
    if max_length is not None:
        options.setdefault("max_length_query", max_length)
        options.setdefault("max_length_doc", max_length)
    return load_callable(ENCODERS[kind].loader)(path, **options)


def encode_texts(encoder, texts: list[str], kind: Kind, batch_size: int):
    """Encode in batches of ``batch_size``: a list of SparseVectors, or a (n, dim) float32 array."""
    import numpy as np

    out = []
    for i in range(0, len(texts), batch_size):
        out.append(encoder.encode(texts[i:i + batch_size], kind))
    if isinstance(encoder, DenseEncoder):
        return np.concatenate(out, axis=0) if out else np.zeros((0, encoder.dim), np.float32)
    return [v for part in out for v in part]
