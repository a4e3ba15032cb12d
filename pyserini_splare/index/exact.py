"""Exact (brute-force) sparse index: the reference every approximate backend is measured against.

The inverted index is a scipy CSR matrix (features x documents) of the quantized integer weights, so exact
and Lucene impact rankings and scores are identical. Files (``postings.npz``, ``docids.npy``, the index
metadata; no pickle): docs/backends.md.
"""

from __future__ import annotations

import time
from array import array

import numpy as np

from .._console import progress
from .._errors import UsageError
from .._outputs import atomic_dir
from ..formats.exact_index import POSTINGS_FILE
from ..formats.idhash import IdHashSet
from ..formats.index_meta import write_index_meta
from ..formats.vectors_reader import open_collection

def build_exact_index(inputs, index: str, *, threads: int = 1, overwrite: bool = False, **options) -> dict:
    """Build an exact index from one or more vectors directories or a foreign JsonVectorCollection folder.

    ``options``: :class:`pyserini_splare.backends.ExactBuild`; ``threads`` is accepted for the common builder
    signature (the build is one pass).
    """
    import scipy.sparse as sp

    from ..backends import get_backend
    from ..formats.docids import write_docids

    o = get_backend("exact").check_build_options(options)
    coll = open_collection(inputs, kind="sparse", quant_scale=o["quant_scale"])
    space = coll.space
    t0 = time.time()
    docids: list[str] = []
    seen = IdHashSet()  # overlapping shards or a repeated id: named after the pass
    # Flat int32 buffers, 8 bytes per posting: a list of one numpy array per document cost 12 bytes
    # per posting plus ~100 per document, and concatenating it held everything twice (~15 GB peak
    # at 1M pooled SPLARE documents instead of ~7).
    indices, values, indptr = array("i"), array("i"), array("q", [0])
    # iter_arrays: ids and impacts as arrays, terms checked against the space (no dict per document).
    for docid, ids, q, where in progress(coll.iter_arrays(), desc="exact: reading vectors", unit="doc"):
        # Impacts are integers in [0, MAX_IMPACT] (checked by the reader): int32 holds them.
        w = q.astype(np.int32)
        seen.add(docid)
        docids.append(docid)
        indices.frombytes(ids.astype(np.int32).tobytes())
        values.frombytes(w.tobytes())
        indptr.append(len(indices))
    coll.check_duplicates(seen)
    del seen
    if not docids:
        raise UsageError(f"{coll}: no documents")
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
    inverted.eliminate_zeros()  # a foreign collection's 0 weights (Pyserini writes them): no posting, as in Lucene
    inverted.sort_indices()
    with atomic_dir(index, overwrite=overwrite) as tmp:
        sp.save_npz(tmp / POSTINGS_FILE, inverted, compressed=False)
        write_docids(tmp, docids)
        meta = write_index_meta(tmp, "exact", vectors=coll.meta.to_json(), source=coll.source(),
                                build={"seconds": round(time.time() - t0, 2), "documents": n_docs,
                                       "postings": int(inverted.nnz)})
    return meta
