"""Encoders: texts -> sparse vectors (SPLADE, SPLADE-LLM, SPLARE, MILCO, ...) or dense embeddings.

An encoder is named by an explicit spec ``kind:path-or-hub-id`` (the kind table, :mod:`.kinds`) or by a
directory whose config says what it is (:func:`resolve_spec`); see docs/encoders.md. Importing this
package imports neither torch nor transformers.
"""

from .base import DenseEncoder, Kind, SparseEncoder
from .kinds import ENCODERS, EncoderKind
from .specs import ENCODER_CONFIG, encode_texts, load_encoder, resolve_spec

__all__ = ["ENCODERS", "EncoderKind", "SparseEncoder", "DenseEncoder", "Kind", "resolve_spec", "load_encoder", "encode_texts",
           "ENCODER_CONFIG"]
