"""``--query-vectors`` files and the quantization of query vectors (docs/search.md).

One ``{"id": qid, "vector": {term: weight}}`` per line. Weights are model outputs, quantized with the index's
scale whatever their JSON number type (``1`` and ``1.0`` are the same query), unless the caller declares them
already quantized (``--query-vectors-quantized``); either way bounded by :data:`~.quant.MAX_IMPACT`.
"""

from __future__ import annotations

import os
from typing import Mapping

import numpy as np

from .._errors import UsageError
from .jsonl import iter_json_lines, read_id
from .jsonvector import check_vector
from .quant import check_impacts, quantize


def read_query_vectors(path: str | os.PathLike) -> dict[str, dict[str, float]]:
    """Read a ``--query-vectors`` JSONL file into ``{qid: {term: weight}}`` (weights as written:
    validated finite and non-negative, not yet quantized). Duplicate ids are refused."""
    out: dict[str, dict[str, float]] = {}
    for where, obj in iter_json_lines(path):
        qid = read_id(obj, where)
        if "vector" not in obj:
            raise UsageError(f"{where}: missing 'vector'")
        if qid in out:
            raise UsageError(f"{where}: duplicate id {qid!r}")
        out[qid] = check_vector(obj["vector"], where)
    if not out:
        raise UsageError(f"{path}: no query vectors")
    return out


def quantize_query(vector: Mapping[str, float], scale: float, *, quantized: bool = False,
                   where: str = "query") -> dict[str, int]:
    """``{term: int impact}`` of a validated query vector.

    ``quantized=False`` (model outputs): ``round(w * scale)`` for ints and floats alike.
    ``quantized=True`` (declared integer impacts): integral weights used as they are, a fractional one
    refused naming ``where``. Zeros are dropped; an impact above MAX_IMPACT is refused.
    """
    terms = list(vector)
    w = np.fromiter((float(x) for x in vector.values()), dtype=np.float64, count=len(terms))
    if quantized:
        frac = w != np.floor(w)
        if frac.any():
            t = terms[int(np.argmax(frac))]
            raise UsageError(f"{where}: weight of {t!r} is {vector[t]!r}, not an integer, in query vectors declared "
                             "quantized (drop --query-vectors-quantized to quantize model outputs)")
        q = check_impacts(np.minimum(w, 2.0 ** 62).astype(np.int64), where, "query weight")
    else:
        q = check_impacts(quantize(w, scale), where, "quantized query weight")
    return {t: v for t, v in zip(terms, q.tolist()) if v > 0}


def load_query_vectors(path: str | os.PathLike, scale: float, *, quantized: bool = False) -> dict[str, dict[str, int]]:
    """:func:`read_query_vectors` then :func:`quantize_query` of every query (``where`` = file and qid)."""
    return {qid: quantize_query(v, scale, quantized=quantized, where=f"{path}: query {qid!r}")
            for qid, v in read_query_vectors(path).items()}
