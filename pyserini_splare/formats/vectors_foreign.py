"""Foreign folders: JsonVectorCollection files another tool wrote, read as a vectors directory.

:func:`scan_foreign` makes up the metadata of a folder without ``meta.json`` in one validating pass, and
:func:`iter_quantized` reads float weights quantized at the scale the user gave (docs/indexing.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .._errors import UsageError
from .jsonl import iter_json_lines, read_id
from .jsonvector import check_vector, iter_jsonl_vectors
from .quant import MAX_IMPACT, check_scale, impact_bound_error, quantize
from .spaces import ForeignSpace
from .vectors_meta import META_FILE, VectorsMeta

FOREIGN_SUFFIXES = (".jsonl", ".json")


def scan_foreign(dirs: Sequence[Path],
                 quant_scale: float | None = None) -> tuple[VectorsMeta, list[Path], float | None]:
    """``(metadata, part files, float scale)`` of JsonVectorCollection folders this toolkit did not write
    (no ``meta.json``), read in name order in one pass (validation, the sorted term list, statistics).

    Integer weights are taken as they are (scale 1); float ones are refused with a hint unless
    ``quant_scale`` is given (docs/indexing.md, "A JsonVectorCollection this toolkit did not write").
    """
    parts = []
    for d in dirs:
        found = sorted(p for p in d.iterdir() if p.is_file() and p.name.endswith(FOREIGN_SUFFIXES)
                       and not p.name.startswith("."))
        if not found:
            raise UsageError(f"{d} has no {META_FILE} and no *.jsonl / *.json files: not a vectors directory")
        parts.extend(found)
    scale = None if quant_scale is None else check_scale(quant_scale)
    terms: set[str] = set()
    n_docs = n_post = 0
    for part in parts:
        for where, obj in iter_json_lines(part):
            read_id(obj, where)
            if "vector" not in obj:
                raise UsageError(f"{where}: missing 'vector'")
            vec = obj["vector"]
            if scale is None:
                if isinstance(vec, dict) and any(type(w) is float for w in vec.values()):
                    check_vector(vec, where)  # a bad term or weight is named first
                    w = next(w for w in vec.values() if type(w) is float)
                    raise UsageError(f"{where}: float weight {w!r} in a folder without {META_FILE}: stored impacts "
                                     "are integers (Lucene truncates floats silently); pass --quant-scale S to "
                                     "quantize them as round(w * S)")
                check_vector(vec, where, integer=True)
            else:
                check_vector(vec, where)
            terms.update(vec)
            n_docs += 1
            n_post += len(vec)
    if n_docs == 0:
        raise UsageError(f"{dirs[0]}: no documents")
    space = ForeignSpace(sorted(terms), name="foreign")
    meta = VectorsMeta(space.to_meta(), 1.0 if scale is None else scale,
                       encoder={"type": "foreign", "source": [str(d.resolve()) for d in dirs]},
                       pooling={}, stats={"documents": n_docs, "postings": n_post,
                                          "mean_terms_per_doc": n_post / n_docs}, foreign=True)
    return meta, parts, scale


def iter_quantized(parts: Sequence[Path], scale: float) -> Iterator[tuple[str, dict[str, int], str]]:
    """``(docid, {term: int impact}, file:line)`` of foreign files with float weights, quantized
    ``round(w * scale)`` as they are read (:func:`scan_foreign` checked them)."""
    for part in parts:
        for docid, vec, where in iter_jsonl_vectors(part):
            terms = list(vec)
            w = np.fromiter((float(x) for x in vec.values()), dtype=np.float64, count=len(terms))
            q = quantize(w, scale)
            if q.size and q.max() > MAX_IMPACT:
                raise impact_bound_error(q.max().item(), where, "quantized weight")
            out = {t: v for t, v in zip(terms, q.tolist()) if v > 0}
            if out:  # every weight rounded to 0: no term left to index (counted by scan_foreign)
                yield docid, out, where
