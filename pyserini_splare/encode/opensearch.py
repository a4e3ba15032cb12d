"""OpenSearch's inference-free sparse models: SPLADE documents, token-weight-table queries.

Geng et al., "Towards Competitive Search Relevance For Inference-Free Learned Sparse Retrievers" (2024,
arXiv 2411.04403); what runs for each side: docs/models.md, "OpenSearch's inference-free models". Equal to
sentence-transformers' ``SparseEncoder`` on the same folder (tests/test_models_opensearch.py). The folder
(``opensearch-neural-sparse-encoding-multilingual-v1`` and the ``doc-v*`` models) holds ``idf.json``
(``{token: weight}``) and the masked LM either at its root or in the subfolder its sentence-transformers
``router_config.json`` names for the document route, whose ``SpladePooling`` config gives the activation.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._errors import UsageError
from ..vectors import SparseVector, VocabSpace
from .base import Kind, SparseEncoder, check_kind
from .fast_tokenizer import FastTokenizer
from .lengths import lengths, reject_unknown
from .licence import checkpoint_licence

IDF_FILE = "idf.json"
ROUTER_CONFIG = "router_config.json"
ACTIVATIONS = ("relu", "log1p_relu")
DEFAULT_MAX_LENGTH = 512  # BERT's learned positions


def _read_json(path: str, what: str):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"{path}: cannot read {what} ({e})") from None


def _is_mlm_folder(d: str) -> bool:
    cfg = os.path.join(d, "config.json")
    if not os.path.isfile(cfg):
        return False
    archs = _read_json(cfg, "the model config").get("architectures") or []
    return any(str(a).endswith("ForMaskedLM") for a in archs)


def document_route(path: str) -> tuple[str, str]:
    """(folder of the masked LM, pooling activation) for an OpenSearch model folder."""
    activation = "relu"
    mlm = path if _is_mlm_folder(path) else None
    router = os.path.join(path, ROUTER_CONFIG)
    if os.path.isfile(router):
        cfg = _read_json(router, "the sentence-transformers router config")
        types, doc = cfg.get("types") or {}, (cfg.get("structure") or {}).get("document") or []
        for name in doc:
            kind = str(types.get(name, ""))
            sub = os.path.join(path, name)
            if kind.endswith(("MLMTransformer", "Transformer")) and mlm is None and _is_mlm_folder(sub):
                mlm = sub
            elif kind.endswith("SpladePooling") and os.path.isfile(os.path.join(sub, "config.json")):
                pcfg = _read_json(os.path.join(sub, "config.json"), "the SpladePooling config")
                if pcfg.get("pooling_strategy", "max") != "max":
                    raise UsageError(f"{sub}: pooling_strategy {pcfg.get('pooling_strategy')!r} is not supported "
                                     "(only 'max', the OpenSearch models' pooling)")
                activation = pcfg.get("activation_function", "relu")
                if activation not in ACTIVATIONS:
                    raise UsageError(f"{sub}: activation_function {activation!r} is not one of {ACTIVATIONS}")
    if mlm is None:
        raise UsageError(f"{path}: no masked LM (a config.json with a *ForMaskedLM architecture) at its root "
                         f"or on the document route of its {ROUTER_CONFIG}")
    return mlm, activation


def read_idf(path: str, tokenizer: FastTokenizer, size: int) -> np.ndarray:
    """``idf.json`` -> a (size,) float32 weight per token id; refuses NaN, infinite or negative weights and
    tokens the tokenizer does not have (sentence-transformers would map those to ``[UNK]`` silently)."""
    f = os.path.join(path, IDF_FILE)
    if not os.path.isfile(f):
        raise UsageError(f"{path}: no {IDF_FILE} (the query token weights of an inference-free model)")
    idf = _read_json(f, "the query token weights")
    if not isinstance(idf, dict) or not idf:
        raise UsageError(f"{f}: expected a non-empty JSON object {{token: weight}}")
    weights = np.zeros(size, dtype=np.float32)
    unknown, bad = [], []
    for token, w in idf.items():
        i = tokenizer.tokenizer.token_to_id(token)
        if i is None or i >= size:
            unknown.append(token)
            continue
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            bad.append((token, w))
            continue
        weights[i] = w
    if bad:
        raise UsageError(f"{f}: {len(bad)} weights are not finite non-negative numbers, "
                         f"e.g. {bad[0][0]!r}: {bad[0][1]!r}")
    if unknown:
        raise UsageError(f"{f}: {len(unknown)} tokens are not in the tokenizer's vocabulary (of {size}), "
                         f"e.g. {unknown[0]!r}: this table belongs to another tokenizer")
    return weights


def idf_query_vectors(tokenizer: FastTokenizer, weights: np.ndarray, texts: Sequence[str],
                      max_length: int) -> list[SparseVector]:
    """Queries by table lookup: tokenized without special tokens, each distinct id present weighs
    ``weights[id]`` (ids of weight 0 left out). Shared by ``opensearch:`` and its ONNX export."""
    out = []
    for ids, _ in tokenizer.encode(list(texts), max_length, add_special_tokens=False):
        ids = np.unique(ids)  # a token present twice weighs once (SparseStaticEmbedding's presence mask)
        w = weights[ids]
        keep = w > 0
        out.append(SparseVector(ids[keep], w[keep]))
    return out


class OpenSearchEncoder(SparseEncoder):
    """Queries: tokenizer + :func:`read_idf` table. Documents: the masked LM with SPLADE pooling (loaded lazily)."""

    def __init__(self, path: str, mlm_path: str, activation: str, tokenizer: FastTokenizer, weights: np.ndarray,
                 space: VocabSpace, *, max_length_query: int, max_length_doc: int, overrides: dict,
                 doc_options: dict):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.path, self.mlm_path, self.activation = path, mlm_path, activation
        self.tokenizer, self.weights, self.space = tokenizer, weights, space
        self.max_length_query, self.max_length_doc = max_length_query, max_length_doc
        self.overrides, self.doc_options = dict(overrides), dict(doc_options)
        self._doc = None

    def document_model(self):
        """The masked LM with SPLADE pooling (a :class:`~.model.SparseModel`), loaded on first use."""
        if self._doc is None:
            from .splade import load_splade

            model = load_splade(self.mlm_path, max_length_query=self.max_length_query,
                                max_length_doc=self.max_length_doc, **self.doc_options)
            if self.activation == "log1p_relu":
                from .modules.pooling import MaxLog1pLog1pReluPooling

                model.pooling = MaxLog1pLog1pReluPooling()
            if model.space != self.space:
                raise UsageError(f"{self.mlm_path}: the masked LM's vocabulary differs from the query tokenizer's")
            self._doc = model
        return self._doc

    def encode(self, texts: Sequence[str], kind: Kind = "doc") -> list[SparseVector]:
        check_kind(kind)
        if kind == "doc":
            return self.document_model().encode(texts, "doc")
        return idf_query_vectors(self.tokenizer, self.weights, texts, self.max_length_query)

    def pooling_meta(self) -> dict[str, Any]:
        return {"method": "max_log1p_relu", "skip": "none", "activation": self.activation,
                "query": "idf_table"}

    def spec(self) -> dict[str, Any]:
        out = {"type": "opensearch", "path": self.path, "activation": self.activation,
               "max_length_query": self.max_length_query, "max_length_doc": self.max_length_doc}
        lic = checkpoint_licence(self.path)
        if lic:
            out["license"] = lic
        if self.overrides:
            out["overrides"] = dict(self.overrides)
        return out


def load_opensearch(path_or_id: str, device: str = "cpu", dtype: str | None = None,
                    max_length_query: int | None = None, max_length_doc: int | None = None,
                    trust_remote_code: bool = False, batch_size: int = 32, **_ignored) -> OpenSearchEncoder:
    """Factory registered as ``opensearch`` in ``ENCODERS``: ``opensearch:/path/to/model`` (a local folder)."""
    reject_unknown(_ignored, "opensearch")
    path = os.fspath(path_or_id)
    if not os.path.isdir(path):
        raise UsageError(f"OpenSearch model {path!r} is not a local folder (download it first: its {IDF_FILE} "
                         "is read from the folder)")
    path = os.path.abspath(path)
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    mlm, activation = document_route(path)
    size = int(_read_json(os.path.join(mlm, "config.json"), "the model config").get("vocab_size") or 0)
    tokenizer = FastTokenizer(mlm if os.path.isfile(os.path.join(mlm, "tokenizer.json")) else path)
    size = size or tokenizer.vocab_size()
    weights = read_idf(path, tokenizer, size)
    limit = min(tokenizer.model_max_length or DEFAULT_MAX_LENGTH, DEFAULT_MAX_LENGTH)
    q, d, over = lengths((limit, limit), max_length_query, max_length_doc, limit)
    terms = [tokenizer.id_to_token(i) or "" for i in range(min(size, tokenizer.vocab_size()))]
    space = VocabSpace(terms + [""] * (size - len(terms)), name="bert-wordpiece")
    return OpenSearchEncoder(path, mlm, activation, tokenizer, weights, space, max_length_query=q,
                             max_length_doc=d, overrides=over,
                             doc_options=dict(device=device, dtype=dtype, trust_remote_code=trust_remote_code,
                                              batch_size=batch_size))
