"""Sparse encoders exported to ONNX, run by onnxruntime on CPU without torch (``onnx:DIR`` specs).

``python -m pyserini_splare.export --format onnx`` writes the folder this module reads: ``trunk.onnx``,
``head.onnx`` (the model's head on token rows), the tokenizer and ``onnx_encoder.json`` (docs/models.md,
"ONNX"). Queries of OpenSearch's inference-free models are an ``idf.json`` lookup (the graphs then open on
the first document batch only). Pooling (the ``POOLINGS`` table below) runs here in numpy exactly as the torch
modules pool (tests/test_onnx_encoder.py, on real SPLADE-tiny).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._errors import UsageError
from ..formats.sparse import SparseVector, prune
from .base import Kind, SparseEncoder, check_kind
from .batching import length_sorted_batches
from .fast_tokenizer import FastTokenizer
from .lengths import lengths, reject_unknown

CONFIG_FILE = "onnx_encoder.json"
FORMAT = "pyserini_splare.onnx/1"
TRUNK_FILE, HEAD_FILE = "trunk.onnx", "head.onnx"
# Names and ranks the exporter writes; a file with others was not written by it (or for another model).
TRUNK_INPUTS = {"input_ids": ("tensor(int64)", 2), "attention_mask": ("tensor(int64)", 2)}
TRUNK_OUTPUTS = {"hidden": ("tensor(float)", 3)}
HEAD_INPUTS = {"rows": ("tensor(float)", 2)}
HEAD_OUTPUTS = {"scores": ("tensor(float)", 2)}
MILCO_POOLING = "max_log1p_relu+sum_per_source_id"
POOLINGS = ("max_log1p_relu", "max_log1p_log1p_relu", "max_per_token_id", MILCO_POOLING)
QUERY_METHODS = ("model", "idf_table")
SKIPS = ("none", "bos", "special")
DEFAULT_CHUNK_TOKENS = 512
DEFAULT_BATCH_SIZE = 32


def read_config(path: str) -> dict[str, Any]:
    f = os.path.join(path, CONFIG_FILE)
    if not os.path.isfile(f):
        raise UsageError(f"{path}: no {CONFIG_FILE}: not a folder written by "
                         "python -m pyserini_splare.export --format onnx")
    try:
        with open(f, encoding="utf-8") as fh:
            cfg = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"{f}: malformed JSON ({e})") from None
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        found = cfg.get("format") if isinstance(cfg, dict) else None
        raise UsageError(f"{f}: format is {found!r}, expected {FORMAT!r}")
    pooling = cfg.get("pooling") or {}
    if pooling.get("method") not in POOLINGS or pooling.get("skip", "none") not in SKIPS:
        raise UsageError(f"{f}: pooling {pooling!r} is not one of {POOLINGS} (skip one of {SKIPS})")
    query = cfg.get("query") or {"method": "model"}  # exports written before OpenSearch's: the graphs
    if query.get("method") not in QUERY_METHODS or (query["method"] == "idf_table" and query.get("file") != "idf.json"):
        raise UsageError(f"{f}: query {query!r} is not one of {QUERY_METHODS} (idf_table reads idf.json)")
    cfg["query"] = query
    return cfg


def _check_io(session, path: str, inputs: dict, outputs: dict, dims: dict[str, int]) -> None:
    """The session's inputs/outputs must be the names, element types and ranks the exporter writes, and
    fixed sizes must match ``dims`` (name -> size of the last axis)."""

    def describe(args):
        return {a.name: (a.type, len(a.shape)) for a in args}

    got_in, got_out = describe(session.get_inputs()), describe(session.get_outputs())
    if got_in != inputs or got_out != outputs:
        raise UsageError(f"{path}: inputs/outputs are not what the exporter writes (expected inputs {inputs} and "
                         f"outputs {outputs}; found {got_in} and {got_out})")
    for arg in (*session.get_inputs(), *session.get_outputs()):
        want, last = dims.get(arg.name), arg.shape[-1]
        if want is not None and isinstance(last, int) and last != want:
            raise UsageError(f"{path}: {arg.name} has {last} values per row, {CONFIG_FILE} says {want}")


class OnnxEncoder(SparseEncoder):
    """An exported sparse encoder: tokenizer -> ``trunk.onnx`` -> ``head.onnx`` on pooled tokens -> numpy pooling."""

    def __init__(self, path: str, cfg: dict[str, Any], graphs, tokenizer: FastTokenizer, *,
                 max_length_query: int, max_length_doc: int, overrides: dict, batch_size: int,
                 chunk_tokens: int = DEFAULT_CHUNK_TOKENS, query_weights: np.ndarray | None = None):
        """``graphs``: (trunk, head) sessions, or a callable returning them on first use (idf_table
        exports, whose queries need none)."""
        from ..formats.spaces import FeatureSpace

        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.path, self.cfg, self.tokenizer = path, cfg, tokenizer
        self._graphs = graphs if callable(graphs) else None
        self.trunk, self.head = (None, None) if callable(graphs) else graphs
        self.query_weights = query_weights
        self.space = FeatureSpace.from_meta(cfg["feature_space"])
        self.max_length_query, self.max_length_doc = max_length_query, max_length_doc
        self.overrides, self.batch_size, self.chunk_tokens = dict(overrides), int(batch_size), int(chunk_tokens)
        self.pooling = dict(cfg["pooling"])
        self.n_out = int(cfg["head_outputs"])
        self._dropped = np.asarray(self.pooling.get("dropped_ids", []), dtype=np.int64)
        self.pruning = cfg.get("pruning") or None

    # ---- encoding -------------------------------------------------------------------------------

    def _pool_mask(self, feats: dict[str, np.ndarray]) -> np.ndarray:
        mask = feats["attention_mask"].astype(bool)
        skip = self.pooling.get("skip", "none")
        if skip == "special":
            mask &= feats["special_tokens_mask"] == 0
        elif skip == "bos":
            mask[:, 0] &= feats["special_tokens_mask"][:, 0] == 0
        return mask

    def _pool(self, hidden: np.ndarray, feats: dict[str, np.ndarray]) -> np.ndarray:
        """(B, T, H) token states -> (B, V) pooled weights, the head run on ``chunk_tokens`` rows at a time."""
        b = hidden.shape[0]
        mask = self._pool_mask(feats)
        rows = hidden[mask]  # real tokens in text order: text 0's rows first
        owner = np.repeat(np.arange(b), mask.sum(axis=1))
        method = self.pooling["method"]
        by_id = method == "max_per_token_id"
        ids = feats["input_ids"][mask]
        width = self.space.size  # max_per_token_id: one weight per token id, whatever the head's width (1)
        # MILCO: the max view is the first pivot_size columns, the LexEcho sums fill the rest of the space
        pivot = int(self.pooling.get("pivot_size", width))
        echo = np.zeros((b, width - pivot), np.float32) if method == MILCO_POOLING else None
        out = np.zeros((b, width), np.float32) if by_id else np.full((b, pivot), -np.inf, np.float32)
        for s in range(0, rows.shape[0], self.chunk_tokens):
            e = min(s + self.chunk_tokens, rows.shape[0])
            scores = self.head.run(None, {"rows": np.ascontiguousarray(rows[s:e], dtype=np.float32)})[0]
            own = owner[s:e]
            if by_id:
                w = np.maximum(scores[:, 0], 0)
                keep = ~np.isin(ids[s:e], self._dropped)
                np.maximum.at(out, (own[keep], ids[s:e][keep]), w[keep])
                continue
            if echo is not None and self.pooling.get("echo"):
                np.add.at(echo, (own, ids[s:e]), scores[:, pivot])  # ReLU and scale are in the graph
            # one contiguous .max(axis=0) per text: much faster than np.maximum.reduceat(axis=0)
            bounds = np.flatnonzero(np.r_[True, own[1:] != own[:-1], True])
            for a, z in zip(bounds[:-1], bounds[1:]):
                np.maximum(out[own[a]], scores[a:z, :pivot].max(axis=0), out=out[own[a]])
        if by_id:
            return out
        out = np.log1p(np.maximum(out, 0))  # -inf (no pooled token) -> 0
        if method == "max_log1p_log1p_relu":
            out = np.log1p(out)
        return out if echo is None else np.concatenate([out, echo], axis=1)

    def _prune(self, v: SparseVector, kind: Kind) -> SparseVector:
        p = self.pruning or {}
        mode = p.get("mode", "none")
        return prune(v, int(p[f"k_{kind}"]) if mode == "topk" else 0, float(p["mass"]) if mode == "mass" else None)

    def encode(self, texts: Sequence[str], kind: Kind = "doc") -> list[SparseVector]:
        check_kind(kind)
        texts = list(texts)
        if not texts:
            return []
        max_len = self.max_length_query if kind == "query" else self.max_length_doc
        if kind == "query" and self.query_weights is not None:
            from .opensearch import idf_query_vectors

            return idf_query_vectors(self.tokenizer, self.query_weights, texts, max_len)
        if self.trunk is None:
            self.trunk, self.head = self._graphs()
        enc = self.tokenizer.encode(texts, max_len)
        out: list[SparseVector | None] = [None] * len(texts)
        for idx in length_sorted_batches([len(ids) for ids, _ in enc], self.batch_size):
            feats = self.tokenizer.pad([enc[i] for i in idx])
            hidden = self.trunk.run(None, {"input_ids": feats["input_ids"],
                                           "attention_mask": feats["attention_mask"]})[0]
            pooled = self._pool(hidden, feats)
            for r, i in enumerate(idx):
                out[i] = self._prune(SparseVector.from_dense(pooled[r]), kind)
        return out  # type: ignore[return-value]

    # ---- description --------------------------------------------------------------------------------

    def pooling_meta(self) -> dict[str, Any]:
        return dict(self.cfg.get("model_pooling") or {"method": self.pooling["method"]})

    def spec(self) -> dict[str, Any]:
        out = {"type": "onnx", "path": self.path, "source": self.cfg.get("source"),
               "quantize": self.cfg.get("quantize"), "max_length_query": self.max_length_query,
               "max_length_doc": self.max_length_doc}
        if self.overrides:
            out["overrides"] = dict(self.overrides)
        return out


def session(path: str, threads: int | None = None):
    """An onnxruntime CPU session (``threads``: intra-op threads; None lets onnxruntime choose)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for unreadable or invalid graphs
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(f"{path}: not a loadable ONNX model ({first})") from None


def load_onnx(path: str, device: str = "cpu", dtype: str | None = None, max_length_query: int | None = None,
              max_length_doc: int | None = None, trust_remote_code: bool = False,
              batch_size: int = DEFAULT_BATCH_SIZE, threads: int | None = None, **_ignored) -> OnnxEncoder:
    """Factory registered as ``onnx`` in ``ENCODERS``: ``onnx:/path/to/export`` (CPU only; ``dtype`` and
    ``trust_remote_code`` do not apply: the graph's weights are what the export wrote)."""
    reject_unknown(_ignored, "onnx")
    if str(device).split(":")[0] != "cpu":
        raise UsageError(f"onnx encoders run on the CPU (onnxruntime), not on {device!r}: use the torch encoder "
                         "(its original KIND:PATH spec) on an accelerator")
    path = os.path.abspath(os.fspath(path))
    cfg = read_config(path)
    files = {name: os.path.join(path, name) for name in (TRUNK_FILE, HEAD_FILE)}
    for f in files.values():
        if not os.path.isfile(f):
            raise UsageError(f"{path}: {os.path.basename(f)} is missing")
    hidden, n_out = int(cfg["hidden_size"]), int(cfg["head_outputs"])

    def graphs():
        trunk, head = session(files[TRUNK_FILE], threads), session(files[HEAD_FILE], threads)
        _check_io(trunk, files[TRUNK_FILE], TRUNK_INPUTS, TRUNK_OUTPUTS, {"hidden": hidden})
        _check_io(head, files[HEAD_FILE], HEAD_INPUTS, HEAD_OUTPUTS, {"rows": hidden, "scores": n_out})
        return trunk, head

    tokenizer = FastTokenizer(path)
    q, d, over = lengths((int(cfg["max_length_query"]), int(cfg["max_length_doc"])), max_length_query,
                         max_length_doc, cfg.get("max_positions"))
    query_weights = None
    if cfg["query"]["method"] == "idf_table":
        from ..formats.spaces import FeatureSpace
        from .opensearch import read_idf

        # The table is checked now (NaN, negative, unknown tokens: one error line); the graphs on the
        # first document batch, so that search with these queries opens no model.
        query_weights = read_idf(path, tokenizer, FeatureSpace.from_meta(cfg["feature_space"]).size)
    return OnnxEncoder(path, cfg, graphs if query_weights is not None else graphs(), tokenizer,
                       max_length_query=q, max_length_doc=d, overrides=over, batch_size=batch_size,
                       query_weights=query_weights)
