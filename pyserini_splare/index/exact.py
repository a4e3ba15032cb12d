"""Exact (brute-force) sparse index: the reference every approximate backend is measured against.

The index is the document-term matrix transposed, i.e. an inverted index in scipy CSR layout
(row = feature id of the vectors' feature space, column = document number), holding the
*quantized integer* weights of the vectors directory. Scoring with the quantized weights is what
Lucene's impact similarity does, so exact and Lucene rankings are identical (scores too).

Files (no pickle anywhere; everything loads with ``allow_pickle=False``)::

    postings.npz                scipy.sparse.save_npz of the (features x documents) int32 CSR matrix
    docids.npy                  np.save of the document ids (fixed-width unicode array)
    pyserini_splare_index.json  backend "exact", the vectors metadata (feature space = term -> row map)

The term -> row map is the feature space recorded in the metadata (``space.id(term)``), a
bijection on ``range(space.size)``: nothing else needs storing.
"""

from __future__ import annotations

import time
from array import array
from pathlib import Path

import numpy as np

from .._cli import UsageError, atomic_dir, progress
from ..vectors import iter_vectors, read_meta
from ._meta import write_index_meta

POSTINGS_FILE = "postings.npz"
DOCIDS_FILE = "docids.npy"


def build_exact_index(input: str, index: str, *, overwrite: bool = False, **_ignored) -> dict:
    """Build an exact index from a vectors directory (integer weights as written by ``encode``)."""
    import scipy.sparse as sp

    vmeta = read_meta(input)
    space = vmeta.space
    t0 = time.time()
    docids: list[str] = []
    seen: set[str] = set()
    rows_of: dict[str, int] = {}  # term -> row cache: space.id validates each distinct term once

    def row_of(t: str) -> int:
        try:
            return rows_of[t]
        except KeyError:
            rows_of[t] = space.id(t)
            return rows_of[t]

    # Flat int32 buffers, 8 bytes per posting: a list of one numpy array per document cost 12 bytes
    # per posting plus ~100 per document, and concatenating it held everything twice (~15 GB peak
    # at 1M pooled SPLARE documents instead of ~7).
    indices, values, indptr = array("i"), array("i"), array("q", [0])
    for docid, vec in progress(iter_vectors(input), desc="exact: reading vectors", unit="doc"):
        if docid in seen:
            raise UsageError(f"{input}: duplicate document id {docid!r}")
        seen.add(docid)
        try:
            ids = np.fromiter(map(row_of, vec), dtype=np.int64, count=len(vec))
        except KeyError as e:
            raise UsageError(f"{input}: document {docid!r}: {e.args[0]}") from None
        w = np.fromiter(vec.values(), dtype=np.float64, count=len(vec))
        if not np.all(w == np.rint(w)):
            raise UsageError(f"{input}: document {docid!r} has non-integer weights (quantize with the writer)")
        if w.size and w.max() > np.iinfo(np.int32).max:
            raise UsageError(f"{input}: document {docid!r} has a weight beyond int32")
        docids.append(docid)
        indices.frombytes(ids.astype(np.int32).tobytes())
        values.frombytes(w.astype(np.int32).tobytes())
        indptr.append(len(indices))
    del seen
    if not docids:
        raise UsageError(f"{input}: no documents")
    n_docs = len(docids)
    # (documents x features) CSR over the buffers (no copy), then transposed into the (features x
    # documents) inverted index, whose rows come out sorted by document. A document cannot name a
    # feature twice: JSON object keys are unique and every feature space maps a feature to one term.
    ptr = np.frombuffer(indptr, dtype=np.int64)
    if ptr[-1] < 2**31:  # int32 throughout, or scipy upcasts the 4-byte indices to match indptr
        ptr = ptr.astype(np.int32)
    docs = sp.csr_matrix((np.frombuffer(values, dtype=np.int32), np.frombuffer(indices, dtype=np.int32), ptr),
                         shape=(n_docs, space.size), copy=False)
    inverted = docs.T.tocsr()
    del docs, ptr, indices, values, indptr
    inverted.sort_indices()
    with atomic_dir(index, overwrite=overwrite) as tmp:
        sp.save_npz(tmp / POSTINGS_FILE, inverted, compressed=False)
        np.save(tmp / DOCIDS_FILE, np.asarray(docids, dtype=str), allow_pickle=False)
        meta = write_index_meta(tmp, "exact", vectors=vmeta.to_json(), source=str(Path(input).resolve()),
                                build={"seconds": round(time.time() - t0, 2), "documents": n_docs,
                                       "postings": int(inverted.nnz)})
    return meta
