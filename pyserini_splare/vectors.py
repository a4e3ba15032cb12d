"""Sparse vectors, feature spaces, quantization and vectors directories: the public facade.

Everything here is implemented in :mod:`pyserini_splare.formats` (one module per format or job) and
only re-exported, so that ``from pyserini_splare.vectors import ...`` -- the import the README and
docs show -- keeps working:

* :class:`SparseVector` (:mod:`.formats.sparse`): int64 feature ids sorted ascending, float32 weights
* :class:`FeatureSpace` and its kinds (:mod:`.formats.spaces`): feature ids <-> index terms
* :func:`quantize` / :func:`dequantize`, :class:`QuantStats`, :data:`MAX_IMPACT` (:mod:`.formats.quant`)
* :class:`VectorsMeta` (:mod:`.formats.vectors_meta`), :class:`VectorsWriter` (:mod:`.formats.vectors_writer`),
  :func:`open_collection` and :func:`iter_vectors` (:mod:`.formats.vectors_reader`)
* :func:`read_query_vectors`, :func:`quantize_query` (:mod:`.formats.query_vectors`)

A *vectors directory* is what ``encode`` writes and every index reads (docs/vectors.md)::

    part-00000.jsonl   {"id": "d1", "contents": "", "vector": {"L12": 143, "L907": 88}}
    meta.json          {"format": "pyserini_splare.vectors/1", "feature_space": {...}, "quant_scale": 100, ...}
"""

from .formats.idhash import IdHashSet, id_hash
from .formats.jsonl import iter_json_lines
from .formats.jsonvector import check_vector, iter_jsonl_vectors
from .formats.quant import (DEFAULT_QUANT_SCALE, MAX_IMPACT, QuantStats, check_impacts, dequantize, quantize,
                            quantize_vector)
from .formats.query_vectors import load_query_vectors, quantize_query, read_query_vectors
from .formats.spaces import CompositeSpace, FeatureSpace, ForeignSpace, PrefixedSpace, VocabSpace
from .formats.sparse import SparseVector
from .formats.vectors_meta import DENSE_FORMAT, META_FILE, VECTORS_FORMAT, VectorsMeta, read_meta
from .formats.vectors_reader import Collection, iter_vectors, open_collection
from .formats.vectors_writer import DEFAULT_PART_SIZE, VectorsWriter, copy_vectors_dir

__all__ = [
    "IdHashSet", "id_hash", "iter_json_lines", "check_vector", "DEFAULT_QUANT_SCALE", "MAX_IMPACT",
    "QuantStats", "check_impacts", "dequantize", "quantize", "quantize_vector", "load_query_vectors",
    "quantize_query", "read_query_vectors", "CompositeSpace", "FeatureSpace", "ForeignSpace", "PrefixedSpace",
    "VocabSpace", "SparseVector", "DEFAULT_PART_SIZE", "DENSE_FORMAT", "META_FILE",
    "VECTORS_FORMAT", "Collection", "VectorsMeta", "VectorsWriter", "copy_vectors_dir", "iter_jsonl_vectors",
    "iter_vectors", "open_collection", "read_meta",
]
