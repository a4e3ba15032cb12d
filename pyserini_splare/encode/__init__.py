"""Encoders: texts -> sparse vectors (SPLADE, SPLADE-LLM, SPLARE, MILCO) or dense embeddings (Qwen3-Embedding).

An encoder is named by an explicit spec ``kind:path-or-hub-id`` (kinds are the keys of
:data:`ENCODERS`, no substring guessing) or by a directory whose config says what it is
(:func:`resolve_spec`). Importing this package imports neither torch nor transformers: the model
modules are imported when an encoder is loaded.

* :func:`load_encoder` builds an encoder from a spec;
* :func:`encode_queries` encodes topics for ``python -m pyserini_splare.search --encoder``, checking
  that the encoder's feature space is the index's;
* ``python -m pyserini_splare.encode`` encodes a corpus into a vectors directory (see docs/encoders.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from .._cli import UsageError
from ._base import ENCODERS, DenseEncoder, Kind, SparseEncoder

__all__ = ["ENCODERS", "SparseEncoder", "DenseEncoder", "Kind", "resolve_spec", "load_encoder", "encode_queries",
           "encode_texts", "ENCODER_CONFIG"]

# A directory holding this file names its encoder kind: {"type": "splare", ...}. SPLARE checkpoints
# (docs/splare-checkpoint.md) carry one; any model folder can be given one to be named by its path.
ENCODER_CONFIG = "pyserini_splare_encoder.json"
# Other configs that say what a folder is (checked in this order).
_KIND_FILES = {"splare_config.json": "splare", "splade_llm_config.json": "splade-llm"}


def _kinds() -> str:
    return ", ".join(sorted(ENCODERS))


def _kind_from_dir(d: Path) -> str:
    """The encoder kind a model directory declares (see :data:`ENCODER_CONFIG`)."""
    for name in (ENCODER_CONFIG, *_KIND_FILES):
        p = d / name
        if p.is_file():
            if name != ENCODER_CONFIG:
                return _KIND_FILES[name]
            try:
                kind = json.loads(p.read_text(encoding="utf-8")).get("type")
            except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as e:
                raise UsageError(f"{p}: malformed encoder config ({e})") from None
            if kind not in ENCODERS:
                raise UsageError(f"{p}: unknown encoder type {kind!r} (known: {_kinds()})")
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
                         f"say which encoder it is: name it explicitly, e.g. qwen3-embed:{d} (kinds: {_kinds()})")
    raise UsageError(f"{d}: checkpoint directory has no config ({ENCODER_CONFIG} or config.json): "
                     f"give an explicit spec KIND:PATH (kinds: {_kinds()})")


def resolve_spec(spec: str) -> tuple[str, str]:
    """``kind:path`` -> (kind, path); a directory -> (kind from its config, path). UsageError otherwise."""
    if not isinstance(spec, str) or not spec.strip():
        raise UsageError(f"empty encoder spec (expected KIND:PATH, kinds: {_kinds()})")
    kind, sep, rest = spec.partition(":")
    if sep and kind in ENCODERS:
        if not rest:
            raise UsageError(f"encoder spec {spec!r} names no model path or hub id")
        return kind, rest
    p = Path(spec)
    if p.is_dir():
        return _kind_from_dir(p), spec
    if sep and "/" not in kind and not p.exists():
        raise UsageError(f"unknown encoder kind {kind!r} in {spec!r} (known: {_kinds()})")
    raise UsageError(f"encoder spec {spec!r} is neither KIND:PATH (kinds: {_kinds()}) nor a model directory")


def load_encoder(spec: str, **options) -> SparseEncoder | DenseEncoder:
    """Build the encoder named by ``spec``.

    ``options``: device, dtype, batch_size, trust_remote_code, and ``max_length_query`` /
    ``max_length_doc`` to override one side's truncation (None: the model's own lengths, see
    docs/encoders.md). ``max_length`` (the older single option) sets both sides.
    """
    import importlib

    kind, path = resolve_spec(spec)
    max_length = options.pop("max_length", None)
    if max_length is not None:
        options.setdefault("max_length_query", max_length)
        options.setdefault("max_length_doc", max_length)
    module, _, attr = ENCODERS[kind].partition(":")
    return getattr(importlib.import_module(module), attr)(path, **options)


def encode_texts(encoder, texts: list[str], kind: Kind, batch_size: int):
    """Encode in batches of ``batch_size``: a list of SparseVectors, or a (n, dim) float32 array."""
    import numpy as np

    out = []
    for i in range(0, len(texts), batch_size):
        out.append(encoder.encode(texts[i:i + batch_size], kind))
    if isinstance(encoder, DenseEncoder):
        return np.concatenate(out, axis=0) if out else np.zeros((0, encoder.dim), np.float32)
    return [v for part in out for v in part]


def encode_queries(spec: str, topics: Mapping[str, str], index_meta: Mapping[str, Any], device: str = "cpu",
                   max_length: int | None = None, batch_size: int = 64, **options) -> dict:
    """Encode topics for searching the index described by ``index_meta`` (its ``pyserini_splare_index.json``).

    Sparse index: ``{qid: {term: float weight}}`` after checking that the encoder's feature space equals
    the index's (a SPLADE query encoder on a SPLARE index is refused). Dense (faiss) index:
    ``{qid: np.ndarray}`` (float32, ``dim`` checked when the index records it).
    """
    from ..search._base import QUERY_KINDS

    if batch_size <= 0:
        raise UsageError(f"batch size must be positive, got {batch_size}")
    backend = index_meta.get("backend", "")
    want = QUERY_KINDS.get(backend, "sparse")
    if want == "text":
        raise UsageError(f"a {backend} index is searched with text, not with an encoder")
    kind, _ = resolve_spec(spec)
    if want == "sparse":
        vmeta = index_meta.get("vectors")
        if not vmeta or "feature_space" not in vmeta:
            raise UsageError("the index metadata records no feature space: cannot check the query encoder")
    encoder = load_encoder(spec, device=device, max_length_query=max_length, **options)
    qids, texts = list(topics), [topics[q] for q in topics]
    if want == "dense":
        if not isinstance(encoder, DenseEncoder):
            raise UsageError(f"{spec!r} is a sparse encoder; this {backend} index needs a dense one (e.g. qwen3-embed:...)")
        dim = index_meta.get("dim") or (index_meta.get("dense") or {}).get("dim")
        if dim is not None and int(dim) != encoder.dim:
            raise UsageError(f"the query encoder's dimension ({encoder.dim}) differs from the index's ({dim})")
        emb = encode_texts(encoder, texts, "query", batch_size)
        return {q: emb[i] for i, q in enumerate(qids)}
    if not isinstance(encoder, SparseEncoder):
        raise UsageError(f"{spec!r} is a dense encoder; this {backend} index needs a sparse one")
    from ..vectors import FeatureSpace

    index_space = FeatureSpace.from_meta(index_meta["vectors"]["feature_space"])
    if encoder.space != index_space:
        raise UsageError(f"the query encoder {spec!r} ({kind}, feature space {encoder.space!r}) does not match the "
                         f"index's feature space {index_space!r}: encode queries with the encoder that built the index")
    vecs = encode_texts(encoder, texts, "query", batch_size)
    out = {}
    for q, v in zip(qids, vecs):
        v = v.nonzero()
        out[q] = {t: float(w) for t, w in zip(encoder.space.terms(v.ids), v.weights)}
    return out
