"""The public facade of :mod:`pyserini_splare.formats` (one module per format or job): ``from
pyserini_splare.vectors import ...`` is the import the README, docs/vectors.md and the tests show."""

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
