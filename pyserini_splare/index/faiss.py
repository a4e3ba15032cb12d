"""faiss indexes of dense embeddings (the Qwen3-Embedding-8B baseline of the WSDM Cup 2026 paper).

Input is a dense vectors directory written by the dense encoder::

    meta.json           {"format": "pyserini_splare.dense/1", "dim": D, "count": N,
                         "encoder": {...spec...}, "normalized": true}
    part-00000.ids.txt  one docid per line
    part-00000.npy      float32 [n, D], row i is the embedding of line i's docid

Index types (``--options JSON``), all scored by inner product (= cosine on normalized embeddings):

* ``{"type": "flat"}`` (default): exact ``IndexFlatIP``. Holds every vector: N × D × 4 bytes,
  e.g. 10M × 4096 fp32 = 164 GB (NeuCLIR1 with Qwen3-Embedding-8B), so at that scale use a node
  with that much RAM, shard the corpus, or compress.
* ``{"type": "hnsw", "M": 32, "efConstruction": 200, "efSearch": 128}``: ``IndexHNSWFlat`` (graph
  search; stores the full vectors plus M×2 links of 4 bytes per vector on layer 0: ~164 GB + 2.6 GB).
* ``{"type": "ivf", "nlist": 4096, "nprobe": 64}``: ``IndexIVFFlat`` (full vectors, coarse
  quantizer trained on a sample); with ``"pq": m`` (and ``"nbits": 8``), ``IndexIVFPQ``: m bytes per
  vector, e.g. m=256 → 10M × 256 B = 2.6 GB (+ 8 B ids), at the cost of approximate scores.

Shards are streamed: each ``part-*.npy`` is memory-mapped and added in chunks, so building needs the
index's own memory plus one chunk. IVF is trained first on a sample of up to ``train_size`` vectors.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .._cli import UsageError, atomic_dir, progress
from ..encode.dense import read_dense_meta
from ._meta import write_index_meta

DOCIDS_FILE = "docids.txt"
FAISS_FILE = "index.faiss"
INDEX_TYPES = ("flat", "hnsw", "ivf")
# Vectors per add() call: bounds the extra memory of a build to CHUNK × D × 4 bytes (1 GB at D=4096).
CHUNK = 65_536


def dense_shards(vectors_dir: str | os.PathLike) -> list[tuple[Path, Path]]:
    """``(ids file, npy file)`` pairs sorted by name; a shard missing either half is an error."""
    d = Path(vectors_dir)
    npys = sorted(d.glob("part-*.npy"))
    if not npys:
        raise UsageError(f"{d}: no part-*.npy shards")
    out = []
    for npy in npys:
        ids = npy.with_name(npy.name[:-len(".npy")] + ".ids.txt")
        if not ids.is_file():
            raise UsageError(f"{npy}: its docids file {ids.name} is missing")
        out.append((ids, npy))
    return out


def iter_dense(vectors_dir: str | os.PathLike, dim: int, chunk: int = CHUNK) -> Iterator[tuple[list[str], np.ndarray]]:
    """Stream ``(docids, float32 [n, dim])`` chunks shard by shard (memory-mapped, never all in RAM)."""
    for ids_path, npy in dense_shards(vectors_dir):
        ids = ids_path.read_text(encoding="utf-8").splitlines()
        try:
            arr = np.load(npy, mmap_mode="r", allow_pickle=False)
        except ValueError as e:
            raise UsageError(f"{npy}: not a numpy array file ({e})") from None
        if arr.ndim != 2 or arr.shape[1] != dim:
            raise UsageError(f"{npy}: shape {arr.shape}, expected (n, {dim})")
        if arr.shape[0] != len(ids):
            raise UsageError(f"{npy}: {arr.shape[0]} vectors but {ids_path.name} has {len(ids)} docids")
        for s in range(0, len(ids), chunk):
            block = np.ascontiguousarray(arr[s:s + chunk], dtype=np.float32)
            if not np.isfinite(block).all():
                raise UsageError(f"{npy}: non-finite values in rows {s}..{s + len(block) - 1}")
            yield ids[s:s + chunk], block


def _check_options(options: dict[str, Any]) -> dict[str, Any]:
    allowed = {"type", "M", "efConstruction", "efSearch", "nlist", "nprobe", "pq", "nbits", "train_size", "seed"}
    unknown = set(options) - allowed
    if unknown:
        raise UsageError(f"unknown faiss option(s) {sorted(unknown)} (allowed: {', '.join(sorted(allowed))})")
    o = {"type": "flat", **options}
    if o["type"] not in INDEX_TYPES:
        raise UsageError(f"faiss option type must be one of {', '.join(INDEX_TYPES)}, got {o['type']!r}")
    defaults = {"hnsw": {"M": 32, "efConstruction": 200, "efSearch": 128},
                "ivf": {"nlist": 1024, "nprobe": 32, "train_size": 262_144, "seed": 0}}.get(o["type"], {})
    o = {**defaults, **o}
    for key in ("M", "efConstruction", "efSearch", "nlist", "nprobe", "pq", "train_size"):
        if key in o and (not isinstance(o[key], int) or isinstance(o[key], bool) or o[key] <= 0):
            raise UsageError(f"faiss option {key} must be a positive integer, got {o[key]!r}")
    if "pq" in o:
        if o["type"] != "ivf":
            raise UsageError("faiss option pq applies to type ivf (IVF-PQ)")
        o.setdefault("nbits", 8)
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


def _train_sample(vectors_dir, dim: int, count: int, size: int, seed: int) -> np.ndarray:
    """A uniform sample of up to ``size`` vectors, read shard by shard (IVF's k-means training set)."""
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(count, size=min(size, count), replace=False))
    out, offset = [], 0
    for _ids, block in iter_dense(vectors_dir, dim):
        sel = keep[(keep >= offset) & (keep < offset + len(block))] - offset
        if len(sel):
            out.append(block[sel])
        offset += len(block)
    return np.concatenate(out)


def build_faiss_index(input, index, threads: int = 1, overwrite: bool = False, **options) -> dict[str, Any]:
    """Build a faiss index from a dense vectors directory; returns the index metadata."""
    passthrough = {"optimize", "validate", "collection", "language"}  # the CLI's other backends' flags
    options = {k: v for k, v in options.items() if k not in passthrough}
    o = _check_options(options)
    meta = read_dense_meta(input)
    dim = meta["dim"]
    shards = dense_shards(input)
    count = sum(len(p.read_text(encoding="utf-8").splitlines()) for p, _ in shards)
    if count == 0:
        raise UsageError(f"{input}: no vectors")
    if o["type"] == "ivf" and count < o["nlist"]:
        raise UsageError(f"faiss option nlist={o['nlist']} exceeds the {count} vectors: lower nlist")

    import faiss

    faiss.omp_set_num_threads(int(threads))
    findex = _make_index(o, dim)
    if o["type"] == "ivf":
        findex.train(_train_sample(input, dim, count, o["train_size"], o["seed"]))

    seen: set[str] = set()
    with atomic_dir(index, overwrite=overwrite) as tmp:
        with open(tmp / DOCIDS_FILE, "w", encoding="utf-8") as ids_out, \
                progress(total=count, desc=f"faiss {o['type']}", unit="doc") as bar:
            for ids, block in iter_dense(input, dim):
                for docid in ids:
                    if not docid or any(c.isspace() for c in docid):
                        raise UsageError(f"{input}: docid {docid!r} is empty or contains whitespace")
                    if docid in seen:
                        raise UsageError(f"{input}: docid {docid!r} appears twice")
                    seen.add(docid)
                findex.add(block)
                ids_out.write("".join(f"{d}\n" for d in ids))
                bar.update(len(ids))
        faiss.write_index(findex, str(tmp / FAISS_FILE))
        build = {"type": o["type"], "count": int(findex.ntotal), "dim": dim,
                 **{k: v for k, v in o.items() if k != "type"}}
        result = write_index_meta(tmp, "faiss", dense=meta, build=build)
    return result
