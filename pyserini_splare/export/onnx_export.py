"""Write a sparse encoder as two ONNX graphs + tokenizer + config (the folder ``onnx:OUT`` reads).

The trunk and the head are exported separately by ``torch.onnx.export`` (dynamic batch and token axes for
the trunk, dynamic rows for the head); pooling stays out of the graphs, because onnxruntime would hold a
whole batch's (tokens x vocabulary) head output, which :mod:`pyserini_splare.encode.onnx_encoder` avoids
by running the head on chunks of pooled tokens. ``quantize="int8"``: onnxruntime's dynamic quantization of
both graphs. Which kinds export, and why MILCO with ``trust_remote_code`` and dense kinds are refused:
docs/models.md, "ONNX".
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any

from .._errors import UsageError
from .._outputs import atomic_dir, atomic_file
from ..encode import onnx_encoder as fmt

QUANTIZE = ("int8",)
CHECK_TEXTS = ["sparse retrieval with learned term weights", "a", "the quick brown fox jumps over the lazy dog " * 8]


def _pooling(model) -> dict[str, Any]:
    from ..encode.bge_m3 import TokenMaxPooling
    from ..encode.modules.milco import MilcoPooling
    from ..encode.modules.pooling import MaxLog1pLog1pReluPooling, MaxLog1pReluPooling

    pooling = model.pooling
    if type(pooling) is MaxLog1pReluPooling:  # exactly: a subclass may pool differently (log1p twice)
        return {"method": "max_log1p_relu", "skip": pooling.skip}
    if type(pooling) is MaxLog1pLog1pReluPooling:
        return {"method": "max_log1p_log1p_relu", "skip": pooling.skip}
    if type(pooling) is MilcoPooling:
        return {"method": MilcoPooling.method, "pivot_size": pooling.en_vocab_size, "echo": model.head.has_echo}
    if isinstance(pooling, TokenMaxPooling):
        return {"method": "max_per_token_id", "dropped_ids": pooling.dropped.tolist()}
    raise UsageError(f"encoder kind {model.kind!r} pools with {type(pooling).__name__}, which the ONNX export does "
                     f"not cover (it covers {', '.join(fmt.POOLINGS)})")


def _export(module, args, path: str, input_names, output_names, dynamic_shapes) -> None:
    import contextlib
    import io
    import logging
    import warnings

    import torch

    from ..encode.modules.trunk import quiet_transformers

    # torch.onnx prints its stages to stdout and logs registry warnings (torchvision ops): not ours to show.
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with quiet_transformers(), torch.no_grad(), contextlib.redirect_stdout(io.StringIO()), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, args, path, input_names=input_names, output_names=output_names,
                              dynamic_shapes=dynamic_shapes, dynamo=True, external_data=False, verbose=False)
    finally:
        quiet.setLevel(level)


def _quantize(path: str) -> None:
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = path + ".int8"
    # Its "consider pre-processing" warning (shape inference for static quantization) does not apply to
    # dynamic quantization of these graphs: not shown.
    logging.disable(logging.WARNING)
    try:
        quantize_dynamic(path, out, weight_type=QuantType.QInt8)
    finally:
        logging.disable(logging.NOTSET)
    os.replace(out, path)


def export_onnx(spec: str, output: str | os.PathLike, *, quantize: str | None = None, overwrite: bool = False,
                max_length_query: int | None = None, max_length_doc: int | None = None,
                trust_remote_code: bool = False, log=print) -> dict[str, Any]:
    """Export the encoder ``spec`` to ``output`` (atomically); returns the written ``onnx_encoder.json``."""
    import torch

    from .._outputs import check_output_dir
    from ..encode import load_encoder, resolve_spec
    from ..encode.model import SparseModel

    if quantize is not None and quantize not in QUANTIZE:
        raise UsageError(f"--quantize must be one of {QUANTIZE}, got {quantize!r}")
    out = check_output_dir(output, overwrite=overwrite)  # before a model is loaded
    kind, _ = resolve_spec(spec)
    if kind == "onnx":
        raise UsageError(f"{spec!r} is already an ONNX export")
    from ..encode.milco import RemoteMilcoEncoder
    from ..encode.opensearch import IDF_FILE, OpenSearchEncoder

    source = load_encoder(spec, device="cpu", dtype="fp32", max_length_query=max_length_query,
                          max_length_doc=max_length_doc, trust_remote_code=trust_remote_code)
    query = {"method": "model"}
    if isinstance(source, OpenSearchEncoder):
        # Documents: its masked LM with SPLADE pooling, exported like a splade folder. Queries: the same
        # idf.json lookup, copied into the export, so onnx:OUT is one encoder in one feature space for both.
        model = source.document_model()
        query = {"method": "idf_table", "file": IDF_FILE}
    else:
        model = source
    if isinstance(source, RemoteMilcoEncoder):
        raise UsageError(f"{spec}: a MILCO checkpoint loaded with --trust-remote-code runs its own encode(), "
                         "which the exporter does not trace; export the reference layout (config.json + "
                         "model.safetensors) without --trust-remote-code")
    if not isinstance(model, SparseModel):
        raise UsageError(f"encoder kind {kind!r} cannot be exported to ONNX (only sparse models built as a "
                         "trunk -> head -> pooling)")
    pooling = _pooling(model)
    model = model.float().eval()
    tok = model.tokenizer
    feats = model.tokenize(["an example input to trace", "short"], "doc")
    ids, mask = feats["input_ids"], feats["attention_mask"]
    hidden = model.trunk.hidden_size

    class TrunkGraph(torch.nn.Module):
        def __init__(self, trunk):
            super().__init__()
            self.trunk = trunk

        def forward(self, input_ids, attention_mask):
            return self.trunk(input_ids, attention_mask).float()

    class HeadGraph(torch.nn.Module):
        def __init__(self, head):
            super().__init__()
            self.head = head

        def forward(self, rows):
            return self.head(rows).float()

    class MilcoHeadGraph(HeadGraph):
        """English MLM logits, then (with LexEcho) the token's echo weight as one more column."""

        def forward(self, rows):
            pivot = self.head.pivot(rows).float()
            if not self.head.has_echo:
                return pivot
            return torch.cat([pivot, self.head.echo_weights(rows).float().unsqueeze(-1)], dim=-1)

    head_graph = (MilcoHeadGraph if "pivot_size" in pooling else HeadGraph)(model.head).eval()
    with torch.no_grad():
        n_out = int(head_graph(torch.zeros(2, hidden)).shape[-1])
    batch, tokens, rows = torch.export.Dim("batch"), torch.export.Dim("tokens"), torch.export.Dim("rows")
    cfg = {"format": fmt.FORMAT, "source": source.spec(), "feature_space": source.space.to_meta(),
           "pooling": pooling, "model_pooling": source.pooling_meta(), "query": query,
           "pruning": model.pruning.config() if model.pruning is not None and model.pruning.active else None,
           "max_length_query": source.max_length_query, "max_length_doc": source.max_length_doc,
           "max_positions": model.trunk.max_positions, "hidden_size": hidden, "head_outputs": n_out,
           "quantize": quantize}
    with atomic_dir(out, overwrite=overwrite) as tmp:
        log(f"exporting the trunk ({type(model.trunk.model).__name__}) to {fmt.TRUNK_FILE}")
        _export(TrunkGraph(model.trunk).eval(), (ids, mask), str(tmp / fmt.TRUNK_FILE),
                ["input_ids", "attention_mask"], ["hidden"],
                {"input_ids": {0: batch, 1: tokens}, "attention_mask": {0: batch, 1: tokens}})
        log(f"exporting the head ({type(model.head).__name__}, {n_out:,} outputs) to {fmt.HEAD_FILE}")
        _export(head_graph, (torch.randn(5, hidden),), str(tmp / fmt.HEAD_FILE), ["rows"],
                ["scores"], {"rows": {0: rows}})
        if quantize:
            log("quantizing both graphs to int8 (onnxruntime dynamic quantization)")
            for name in (fmt.TRUNK_FILE, fmt.HEAD_FILE):
                _quantize(str(tmp / name))
        with tempfile.TemporaryDirectory() as td:  # the tokenizer's files only (no vocab.txt clutter checks)
            tok.save_pretrained(td)
            if not os.path.isfile(os.path.join(td, "tokenizer.json")):
                raise UsageError(f"{spec}: its tokenizer has no fast (tokenizer.json) form, which the ONNX "
                                 "encoder needs to tokenize without transformers")
            for name in os.listdir(td):
                shutil.copy(os.path.join(td, name), tmp / name)
        if query["method"] == "idf_table":
            shutil.copy(os.path.join(source.path, IDF_FILE), tmp / IDF_FILE)
        with atomic_file(tmp / fmt.CONFIG_FILE) as f:
            json.dump(cfg, f, indent=1)
            f.write("\n")
        diff = check_parity(source, str(tmp))
        log(f"check: ONNX vs torch on {len(CHECK_TEXTS)} texts, max weight difference {diff:.2e}")
        cfg["check_max_abs_diff"] = diff
    return cfg


def check_parity(model, path: str) -> float:
    """Max |weight| difference between the torch model and the export on :data:`CHECK_TEXTS` (both sides);
    a different set of non-zero features counts as the larger of the weights involved."""
    import numpy as np

    from ..encode.onnx_encoder import load_onnx

    onnx = load_onnx(path)
    worst = 0.0
    for kind in ("query", "doc"):
        for a, b in zip(model.encode(CHECK_TEXTS, kind), onnx.encode(CHECK_TEXTS, kind)):
            da, db = dict(zip(a.ids.tolist(), a.weights.tolist())), dict(zip(b.ids.tolist(), b.weights.tolist()))
            for k in set(da) | set(db):
                worst = max(worst, abs(da.get(k, 0.0) - db.get(k, 0.0)))
    return float(np.float32(worst))


__all__ = ["QUANTIZE", "check_parity", "export_onnx"]
