"""The JsonVectorCollection record: ``{"id": ..., "contents": ..., "vector": {term: weight}}``.

One line of a vectors directory's ``part-*.jsonl`` (Pyserini/Anserini's ``JsonVectorCollection``, what
``seismic.SeismicIndex.build`` reads) and of a ``--query-vectors`` file. This module validates a
record's vector (:func:`check_vector`) and formats records (:class:`LineFormatter`); files and
directories are :mod:`.vectors_dir`'s and :mod:`.query_vectors`'s.

Rules for a vector read from a file (untrusted input): a non-empty object; every term non-empty,
printable, without whitespace (Anserini's ``-pretokenized`` splits on whitespace); every weight a
JSON number, finite and non-negative; for stored impacts (``integer=True``) an integer no larger
than :data:`~.quant.MAX_IMPACT`.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

import numpy as np

from .._cli import UsageError
from .quant import MAX_IMPACT, impact_bound_error
from .spaces import FeatureSpace, safe_term

_WHITESPACE = re.compile(r"\s")
_FLOAT_MAX = sys.float_info.max


def _terms_clean(vector: dict) -> bool:
    # Whitespace and printability are properties of each character: check the terms joined, in C.
    if "" in vector:
        return False
    joined = "".join(vector)
    return joined.isprintable() and _WHITESPACE.search(joined) is None


def _vector_is_clean(vector: dict, integer: bool = False) -> bool:
    """The checks of :func:`check_vector` over the whole vector at C speed (min/max/sum built-ins over
    the values, one pass over the joined terms). Documents hold hundreds of terms and a collection
    millions of documents; the term-by-term loop only runs to name the culprit when this says no."""
    if not _terms_clean(vector):
        return False
    vals = vector.values()
    types = set(map(type, vals))
    if types == {int}:  # bool is its own type: refused below
        return min(vals) >= 0 and (max(vals) <= (MAX_IMPACT if integer else _FLOAT_MAX))
    if integer or not types <= {int, float}:
        return False
    if int in types and not max(vals) <= _FLOAT_MAX:  # an integer beyond float range (or a NaN)
        return False
    # A NaN or an infinity makes the sum non-finite; a finite sum with a negative term is caught by min.
    return math.isfinite(sum(vals)) and min(vals) >= 0


def check_vector(vector: Any, where: str, integer: bool = False) -> dict:
    """Validate a ``{term: weight}`` mapping read from a file; raise a one-line UsageError naming
    ``where``. ``integer``: stored impacts (integers in ``[0, MAX_IMPACT]``). Returns ``vector``."""
    if not isinstance(vector, dict):
        raise UsageError(f"{where}: 'vector' must be an object of term: weight, got {type(vector).__name__}")
    if not vector:
        raise UsageError(f"{where}: empty vector")
    if _vector_is_clean(vector, integer):
        return vector
    for term, w in vector.items():
        if not safe_term(term):
            raise UsageError(f"{where}: term {term!r} is empty or contains whitespace/control characters")
        if isinstance(w, bool) or not isinstance(w, (int, float)):
            raise UsageError(f"{where}: weight of {term!r} is not a number: {w!r}")
        try:
            finite = math.isfinite(w)
        except OverflowError:  # an integer beyond float range
            finite = False
        if not finite:
            if integer and isinstance(w, int):
                raise impact_bound_error(w, where, f"weight of {term!r}")
            raise UsageError(f"{where}: weight of {term!r} is {w if isinstance(w, float) else 'too large'} (must be finite)")
        if w < 0:
            raise UsageError(f"{where}: weight of {term!r} is negative ({w})")
        if integer and type(w) is not int:
            if w > MAX_IMPACT:
                raise impact_bound_error(w, where, f"weight of {term!r}")
            raise UsageError(f"{where}: weight of {term!r} is not an integer ({w!r}): stored impacts are integers "
                             "(Lucene truncates floats silently); quantize them (--quant-scale S)")
        if integer and w > MAX_IMPACT:
            raise impact_bound_error(w, where, f"weight of {term!r}")
    return vector  # the term-by-term checks are the reference


class LineFormatter:
    """Formats ``{"id", "contents", "vector"}`` lines, byte for byte what
    ``json.dumps(record, ensure_ascii=False)`` writes, at ~5x its speed: each term's ``"term": ``
    prefix is JSON-escaped once per space (cached), weights are integers joined in one call.
    """

    def __init__(self, space: FeatureSpace):
        self.space = space
        self._prefix: list[str] | None = None

    def _table(self) -> list[str]:
        if self._prefix is None:
            dumps = json.dumps
            self._prefix = [dumps(t, ensure_ascii=False) + ": " for t in self.space.terms(range(self.space.size))]
        return self._prefix

    def line(self, docid: str, ids: np.ndarray, q: np.ndarray, contents: str = "") -> str:
        table = self._table()
        body = ", ".join([table[i] + str(w) for i, w in zip(ids.tolist(), q.tolist())])
        c = '""' if not contents else json.dumps(contents, ensure_ascii=False)
        return f'{{"id": {json.dumps(docid, ensure_ascii=False)}, "contents": {c}, "vector": {{{body}}}}}\n'
