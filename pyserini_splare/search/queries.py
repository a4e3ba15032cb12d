"""The queries a search takes, per backend kind: text, encoded topics, or pre-encoded query vectors.

An encoder must fit the index (same feature space, or dimension for dense); query vectors are quantized with
the index's scale (:mod:`pyserini_splare.formats.query_vectors`). See docs/search.md.
"""

from __future__ import annotations

from typing import Any, Mapping

from .._errors import UsageError
from ..backends import Backend
from .base import QuantizedQuery


def read_query_file(path: str, topics: Mapping[str, str] | None, *, quantized: bool = False) -> dict[str, dict]:
    """``{qid: {term: weight}}`` from a query-vectors file, restricted to ``topics`` when given.

    With ``quantized`` the vectors are :class:`QuantizedQuery` objects (weights used as they are)."""
    from ..formats.query_vectors import read_query_vectors

    vecs = read_query_vectors(path)
    if topics is not None:
        missing = [q for q in topics if q not in vecs]
        if missing:
            raise UsageError(f"{len(missing)} of {len(topics)} topics have no vector in {path} (first: {missing[0]!r})")
        vecs = {q: vecs[q] for q in topics}
    return {q: QuantizedQuery(v) for q, v in vecs.items()} if quantized else vecs


def keep_topk(vecs: Mapping[str, Mapping[str, float]], k: int) -> dict[str, dict]:
    """Each query's ``k`` largest weights (Top-K pooling), its type (quantized or not) kept."""
    return prune_queries(vecs, k)


def prune_queries(vecs: Mapping[str, Mapping[str, float]], topk: int = 0, mass: float | None = None) -> dict[str, dict]:
    """Each query pruned as :func:`pyserini_splare.formats.sparse.prune` prunes (mass, then Top-K; ties by
    the term's position in the query), its type (quantized or not) kept; no pruning returns ``vecs``."""
    from ..formats.sparse import SparseVector, prune

    if topk <= 0 and mass is None:
        return dict(vecs)
    out = {}
    for qid, v in vecs.items():
        terms = list(v)
        kept = prune(SparseVector(list(range(len(terms))), [float(v[t]) for t in terms]), topk, mass)
        out[qid] = type(v)({terms[i]: v[terms[i]] for i in kept.ids})
    return out


def encode_topics(spec: str, topics: Mapping[str, str], backend: Backend, index_meta: Mapping[str, Any], *,
                  device: str = "cpu", max_length: int | None = None, batch_size: int = 64) -> dict[str, Any]:
    """Encode ``topics`` with the encoder ``spec`` for an index of ``backend`` described by ``index_meta``.

    Sparse index: ``{qid: {term: float weight}}`` (model outputs; the searcher quantizes them).
    Dense index: ``{qid: float32 vector}``.
    """
    from ..encode import DenseEncoder, SparseEncoder, encode_texts, load_encoder, resolve_spec

    if batch_size <= 0:
        raise UsageError(f"batch size must be positive, got {batch_size}")
    if backend.query_kind == "text":
        raise UsageError(f"a {backend.name} index is searched with text, not with an encoder")
    kind, _ = resolve_spec(spec)
    if backend.query_kind == "sparse":
        vmeta = index_meta.get("vectors")
        if not vmeta or "feature_space" not in vmeta:
            raise UsageError("the index metadata records no feature space: cannot check the query encoder")
    # --max-length is the query side's: the document side's length is the index's business.
    encoder = load_encoder(spec, device=device, **({} if max_length is None else {"max_length_query": max_length}))
    qids, texts = list(topics), [topics[q] for q in topics]
    if backend.query_kind == "dense":
        if not isinstance(encoder, DenseEncoder):
            raise UsageError(f"{spec!r} is a sparse encoder; this {backend.name} index needs a dense one "
                             f"(e.g. qwen3-embed:...)")
        dim = (index_meta.get("dense") or {}).get("dim")
        if dim is not None and int(dim) != encoder.dim:
            raise UsageError(f"the query encoder's dimension ({encoder.dim}) differs from the index's ({dim})")
        emb = encode_texts(encoder, texts, "query", batch_size)
        return {q: emb[i] for i, q in enumerate(qids)}
    if not isinstance(encoder, SparseEncoder):
        raise UsageError(f"{spec!r} is a dense encoder; this {backend.name} index needs a sparse one")
    from ..formats.spaces import FeatureSpace

    index_space = FeatureSpace.from_meta(index_meta["vectors"]["feature_space"])
    if encoder.space != index_space:
        raise UsageError(f"the query encoder {spec!r} ({kind}, feature space {encoder.space!r}) does not match the "
                         f"index's feature space {index_space!r}: encode queries with the encoder that built the index")
    out = {}
    for q, v in zip(qids, encode_texts(encoder, texts, "query", batch_size)):
        v = v.nonzero()
        out[q] = {t: float(w) for t, w in zip(encoder.space.terms(v.ids), v.weights)}
    return out
