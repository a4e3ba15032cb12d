"""Drop-in encoders for Pyserini's Python API (docs/encoders.md, "Query encoding and Pyserini interop").

:class:`PyseriniQueryEncoder` (``encode(text) -> {term: int}``, for ``LuceneImpactSearcher(index,
query_encoder=ours, min_idf=-1)``) and :class:`PyseriniDocumentEncoder` (Pyserini's ``DocumentEncoder``)
wrap any of our sparse encoders; neither imports pyserini, which only duck-types ``encode``.
"""

from __future__ import annotations

from typing import Any, Sequence

from .._errors import UsageError
from ..vectors import DEFAULT_QUANT_SCALE, quantize_vector


def _load(encoder, **options):
    if isinstance(encoder, str):
        from . import load_encoder

        encoder = load_encoder(encoder, **options)
    from .base import SparseEncoder

    if not isinstance(encoder, SparseEncoder):
        raise UsageError(f"Pyserini's impact search needs a sparse encoder, got {type(encoder).__name__}")
    return encoder


def _index_vectors_meta(index_dir: str) -> dict[str, Any]:
    from ..formats.index_meta import read_index_meta

    meta = read_index_meta(index_dir)
    if "vectors" not in meta:
        raise UsageError(f"{index_dir}: not an impact index built from a vectors directory")
    return meta["vectors"]


class PyseriniQueryEncoder:
    """Pyserini query encoder: ``encode(text) -> {term: int}`` with ``round(w * quant_scale)``.

    ``index_dir`` (optional) reads the scale from an index built here and checks its feature space; ``topk`` > 0
    keeps the k largest weights (the seeds use 40).
    """

    def __init__(self, encoder, index_dir: str | None = None, quant_scale: float | None = None, topk: int = 0,
                 **options):
        if topk < 0:
            raise ValueError(f"topk must be >= 0, got {topk}")
        self.encoder = _load(encoder, **options)
        self.topk = topk
        scale = quant_scale
        if index_dir is not None:
            from ..vectors import VectorsMeta

            vm = VectorsMeta.from_json(_index_vectors_meta(index_dir))
            if vm.space != self.encoder.space:
                raise UsageError(f"the encoder's feature space {self.encoder.space!r} differs from the index's {vm.space!r}")
            if scale is not None and scale != vm.quant_scale:
                raise UsageError(f"quant_scale {scale:g} differs from the index's {vm.quant_scale:g}")
            scale = vm.quant_scale
        self.quant_scale = float(scale if scale is not None else DEFAULT_QUANT_SCALE)

    def encode_batch(self, texts: Sequence[str]) -> list[dict[str, int]]:
        out = []
        for vec in self.encoder.encode(list(texts), "query"):
            ids, q = quantize_vector(vec.topk(self.topk), self.quant_scale)
            out.append(dict(zip(self.encoder.space.terms(ids), (int(x) for x in q))))
        return out

    def encode(self, text: str, **_kwargs) -> dict[str, int]:
        return self.encode_batch([text])[0]


class PyseriniDocumentEncoder:
    """Pyserini ``DocumentEncoder``: ``encode(texts, titles=None, **kwargs) -> [{term: weight}]``.

    Titles are joined to texts with a space, as ``encode`` does; weights are ``round(w * quant_scale)`` integers
    (``quant_scale=None``: floats); ``topk`` > 0 keeps the k largest (the seeds pool documents to 400).
    """

    def __init__(self, encoder, quant_scale: float | None = DEFAULT_QUANT_SCALE, topk: int = 0, **options):
        if topk < 0:
            raise ValueError(f"topk must be >= 0, got {topk}")
        if quant_scale is not None and not quant_scale > 0:
            raise ValueError(f"quant_scale must be positive or None, got {quant_scale}")
        self.encoder = _load(encoder, **options)
        self.quant_scale, self.topk = quant_scale, topk

    def encode(self, texts, titles=None, **_kwargs) -> list[dict[str, Any]]:
        from ..corpus import join_title

        texts = list(texts)
        if titles is not None:
            titles = list(titles)
            if len(titles) != len(texts):
                raise ValueError(f"{len(titles)} titles for {len(texts)} texts")
            texts = [join_title(t, x) for t, x in zip(titles, texts)]
        out = []
        space = self.encoder.space
        for vec in self.encoder.encode(texts, "doc"):
            vec = vec.nonzero().topk(self.topk)
            if self.quant_scale is None:
                out.append({t: float(w) for t, w in zip(space.terms(vec.ids), vec.weights)})
            else:
                ids, q = quantize_vector(vec, self.quant_scale)
                out.append(dict(zip(space.terms(ids), (int(x) for x in q))))
        return out
