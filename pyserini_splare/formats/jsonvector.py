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
import sys
from typing import Any

import numpy as np
import orjson

from .._cli import UsageError
from .quant import MAX_IMPACT, impact_bound_error
from .spaces import FeatureSpace, safe_term

_FLOAT_MAX = sys.float_info.max


def _terms_clean(vector: dict) -> bool:
    # Whitespace and printability are properties of each character: check the terms joined, in C.
    # The only whitespace character str.isprintable() accepts is the ASCII space (checked over all of
    # Unicode), so `" " not in` completes it without a regex.
    if "" in vector:
        return False
    joined = "".join(vector)
    return joined.isprintable() and " " not in joined


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
    """Formats ``{"id", "contents", "vector"}`` lines as UTF-8 bytes, byte for byte what
    ``json.dumps(record, ensure_ascii=False) + "\\n"`` writes (the format every vectors directory has
    had), at orjson's speed.

    orjson writes the vector compactly (``{"L1":50,"L5":123}``); the two separators json.dumps puts a
    space after are restored by replacing ``":`` and ``,"``, which is exact whenever no term holds a
    ``"`` or a ``\\`` (then those byte pairs occur only between keys and values, and values are
    integers). Terms that do (BERT's vocabulary has both) are formatted by json.dumps, per document.
    """

    def __init__(self, space: FeatureSpace):
        self.space = space
        self._terms: list[str] | None = None
        self._quoted: list[str] | None = None
        self._escape: np.ndarray | None = None

    def _tables(self) -> None:
        if self._terms is None:
            self._terms = self.space.terms(range(self.space.size))
            self._escape = np.fromiter(('"' in t or "\\" in t for t in self._terms), dtype=bool,
                                       count=len(self._terms))

    def line(self, docid: str, ids: np.ndarray, q: np.ndarray, contents: str = "") -> bytes:
        self._tables()
        terms = self._terms
        head = (b'{"id": ' + orjson.dumps(docid) + b', "contents": '
                + (b'""' if not contents else json.dumps(contents, ensure_ascii=False).encode()) + b', "vector": ')
        if not self._escape[ids].any():
            body = orjson.dumps(dict(zip(map(terms.__getitem__, ids.tolist()), q.tolist())))
            return head + body.replace(b'":', b'": ').replace(b',"', b', "') + b"}\n"
        vec = dict(zip(map(terms.__getitem__, ids.tolist()), q.tolist()))
        return head + json.dumps(vec, ensure_ascii=False).encode() + b"}\n"
