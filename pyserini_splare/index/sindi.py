"""SINDI index of a vectors directory (VSAG's windowed sparse inverted index, ``pyvsag``).

Without pruning (the defaults) every posting of every query term is scored, so the top k is exact; weights
are the integer impacts as float32, exact while scores stay below 2^24 (docs/backends.md). Files:
``index.sindi``, ``docids.npy`` and the index metadata with ``sindi_params`` (needed to load it again).
"""

from __future__ import annotations

import json
import time
from array import array

import numpy as np

from .._console import progress
from .._errors import UsageError
from .._outputs import atomic_dir
from ..backends import get_backend
from ..formats.idhash import IdHashSet
from ..formats.index_meta import write_index_meta
from ..formats.sindi_index import INDEX_FILE, import_pyvsag
from ..formats.vectors_reader import open_collection

def sindi_params(space_size: int, max_terms: int, window_size: int, doc_prune_ratio: float) -> dict:
    """The parameters ``pyvsag.Index("sindi", json)`` is created with (at build and at every load).

    ``dim`` is SINDI's bound on a vector's non-zero terms (not the vocabulary size); ``term_id_limit``
    bounds the term ids (the feature space). No quantization and no reorder: float32 postings, scored once."""
    return {"dtype": "sparse", "metric_type": "ip", "dim": int(max(1, max_terms)),
            "index_param": {"term_id_limit": int(space_size), "window_size": int(window_size),
                            "doc_prune_ratio": float(doc_prune_ratio), "use_reorder": False}}


def build_sindi_index(inputs, index: str, *, threads: int = 1, overwrite: bool = False, **options) -> dict:
    """Build a SINDI index from one or more vectors directories (shards of one collection) or a
    JsonVectorCollection folder without ``meta.json`` (``quant_scale`` quantizes its float weights);
    ``options``: :class:`pyserini_splare.backends.SindiBuild`. ``threads`` is accepted for the common
    builder signature (pyvsag's build takes none)."""
    from ..formats.docids import write_docids

    pyvsag = import_pyvsag()

    o = get_backend("sindi").check_build_options(options)
    coll = open_collection(inputs, kind="sparse", quant_scale=o["quant_scale"])
    t0 = time.time()
    docids: list[str] = []
    seen = IdHashSet()
    # One CSR in flat buffers (SINDI's build takes the whole collection at once): 8 bytes per posting.
    indices, values, indptr = array("I"), array("f"), array("q", [0])
    for docid, ids, q, _ in progress(coll.iter_arrays(), desc="sindi: reading vectors", unit="doc"):
        keep = q > 0  # a foreign collection's 0 weights: no posting (as exact and Lucene)
        ids, q = ids[keep], q[keep]
        order = np.argsort(ids, kind="stable")  # SINDI's CSR rows hold their terms in id order
        seen.add(docid)
        docids.append(docid)
        indices.frombytes(ids[order].astype(np.uint32).tobytes())
        values.frombytes(q[order].astype(np.float32).tobytes())
        indptr.append(len(indices))
    coll.check_duplicates(seen)
    del seen
    if not docids:
        raise UsageError(f"{coll}: no documents")
    if len(indices) >= 2**32:
        raise UsageError(f"{coll}: {len(indices):,} postings; SINDI's CSR offsets are 32-bit")
    ptr = np.frombuffer(indptr, dtype=np.int64)
    params = sindi_params(coll.space.size, int(np.diff(ptr).max()), o["window_size"], o["doc_prune_ratio"])
    ix = pyvsag.Index("sindi", json.dumps(params))
    ix.build(index_pointers=ptr.astype(np.uint32), indices=np.frombuffer(indices, dtype=np.uint32),
             values=np.frombuffer(values, dtype=np.float32), ids=np.arange(len(docids), dtype=np.int64))
    with atomic_dir(index, overwrite=overwrite) as tmp:
        ix.save(str(tmp / INDEX_FILE))
        write_docids(tmp, docids)
        meta = write_index_meta(tmp, "sindi", vectors=coll.meta.to_json(), source=coll.source(), index_file=INDEX_FILE,
                                sindi_params=params, sindi_build={k: v for k, v in o.items() if k != "quant_scale"},
                                build={"seconds": round(time.time() - t0, 2), "documents": len(docids),
                                       "postings": len(indices)})
    return meta
