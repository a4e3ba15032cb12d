"""faiss indexes of dense embeddings (the Qwen3-Embedding-8B baseline of the WSDM Cup 2026 paper).

Index types ``flat`` (default), ``hnsw``, ``ivf`` (``pq`` for IVF-PQ), all inner product, and their memory at
NeuCLIR1 scale: docs/dense.md. Parts are memory-mapped and added in chunks, so building needs the index's
own memory plus one chunk; IVF is trained first on a sample of up to ``train_size`` vectors.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._console import progress
from .._errors import UsageError
from .._outputs import atomic_dir
from ..formats.docids import write_docids
from ..formats.faiss_index import FAISS_FILE
from ..formats.index_meta import write_index_meta
from ..formats.vectors_reader import Collection, open_collection

# Vectors per add() call: bounds the extra memory of a build to CHUNK × D × 4 bytes (1 GB at D=4096).
CHUNK = 65_536


# The options each index type uses (the others are refused when given, not silently recorded).
TYPE_OPTIONS = {"flat": (), "hnsw": ("M", "efConstruction", "efSearch"),
                "ivf": ("nlist", "nprobe", "pq", "nbits", "train_size", "seed")}


def _check_options(options: dict[str, Any]) -> dict[str, Any]:
    """The build options (:class:`pyserini_splare.backends.FaissBuild`: defaults and limits) of the chosen type."""
    from ..backends import get_backend

    full = get_backend("faiss").check_build_options(options)
    kind = full["type"]
    given = {k for k, v in options.items() if v is not None and k != "type"}
    other = sorted(given - set(TYPE_OPTIONS[kind]))
    if other:
        users = sorted({t for k in other for t, names in TYPE_OPTIONS.items() if k in names})
        raise UsageError(f"faiss option(s) {', '.join(other)} apply to type {'/'.join(users)}, not {kind}")
    o = {"type": kind, **{k: full[k] for k in TYPE_OPTIONS[kind] if full[k] is not None}}
    if "pq" not in o:
        o.pop("nbits", None)
    return o


def _make_index(o: dict[str, Any], dim: int):
    import faiss

    if o["type"] == "flat":
        return faiss.IndexFlatIP(dim)
    if o["type"] == "hnsw":
        index = faiss.IndexHNSWFlat(dim, o["M"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = o["efConstruction"]
        index.hnsw.efSearch = o["efSearch"]
        return index
    quantizer = faiss.IndexFlatIP(dim)
    if "pq" in o:
        if dim % o["pq"]:
            raise UsageError(f"faiss option pq={o['pq']} must divide the dimension {dim}")
        index = faiss.IndexIVFPQ(quantizer, dim, o["nlist"], o["pq"], o["nbits"], faiss.METRIC_INNER_PRODUCT)
    else:
        index = faiss.IndexIVFFlat(quantizer, dim, o["nlist"], faiss.METRIC_INNER_PRODUCT)
    index.nprobe = o["nprobe"]
    return index


def _train_sample(coll: Collection, count: int, size: int, seed: int) -> np.ndarray:
    """A uniform sample of up to ``size`` vectors, read part by part (IVF's k-means training set)."""
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(count, size=min(size, count), replace=False))
    out, offset = [], 0
    for _ids, block in coll.iter_dense(CHUNK):
        sel = keep[(keep >= offset) & (keep < offset + len(block))] - offset
        if len(sel):
            out.append(block[sel])
        offset += len(block)
    return np.concatenate(out)


def build_faiss_index(inputs, index, threads: int = 1, overwrite: bool = False, **options) -> dict[str, Any]:
    """Build a faiss index from one or more dense vectors directories (shards of one collection:
    dimension, encoder and normalization must agree; ids must not overlap); returns the index metadata."""
    o = _check_options(options)
    coll = open_collection(inputs, kind="dense")
    dim = coll.meta.dim
    count = coll.count()
    if count == 0:
        raise UsageError(f"{coll}: no vectors")
    if o["type"] == "ivf" and count < o["nlist"]:
        raise UsageError(f"faiss option nlist={o['nlist']} exceeds the {count} vectors: lower nlist")

    import faiss

    faiss.omp_set_num_threads(int(threads))
    findex = _make_index(o, dim)
    if o["type"] == "ivf":
        findex.train(_train_sample(coll, count, o["train_size"], o["seed"]))

    with atomic_dir(index, overwrite=overwrite) as tmp:
        # iter_dense checks shapes, finiteness, ids (no whitespace, none twice across shards).
        docids: list[str] = []
        with progress(total=count, desc=f"faiss {o['type']}", unit="doc") as bar:
            for ids, block in coll.iter_dense(CHUNK):
                findex.add(block)
                docids.extend(ids)
                bar.update(len(ids))
        faiss.write_index(findex, str(tmp / FAISS_FILE))
        write_docids(tmp, docids)
        build = {"type": o["type"], "count": int(findex.ntotal), "dim": dim,
                 **{k: v for k, v in o.items() if k != "type"}}
        meta = coll.meta.to_json()
        result = write_index_meta(tmp, "faiss", dense=meta, build=build,
                                  **({"source": coll.source()} if len(coll.dirs) > 1 else {}))
    return result
