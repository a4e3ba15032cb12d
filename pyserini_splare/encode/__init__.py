"""Encoders: texts -> sparse vectors (SPLADE, SPLADE-LLM, SPLARE, MILCO) or dense embeddings (Qwen3-Embedding).

An encoder is named by an explicit spec ``kind:path-or-hub-id`` (kinds are the keys of
:data:`ENCODERS`, the one kind table in :mod:`.kinds`: no substring guessing) or by a directory whose config says what it is
(:func:`resolve_spec`). Importing this package imports neither torch nor transformers: the model
modules are imported when an encoder is loaded.

* :func:`load_encoder` builds an encoder from a spec;
* :func:`encode_texts` encodes a list of texts in batches (``search --encoder`` encodes topics with it,
  in ``search/queries.py``, after checking the encoder against the index);
* ``python -m pyserini_splare.encode`` encodes a corpus into a vectors directory (see docs/encoders.md).
"""

from .base import DenseEncoder, Kind, SparseEncoder
from .kinds import ENCODERS, EncoderKind
from .specs import ENCODER_CONFIG, encode_texts, load_encoder, resolve_spec

__all__ = ["ENCODERS", "EncoderKind", "SparseEncoder", "DenseEncoder", "Kind", "resolve_spec", "load_encoder", "encode_texts",
           "ENCODER_CONFIG"]
