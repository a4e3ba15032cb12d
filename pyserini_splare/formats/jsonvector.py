"""The JsonVectorCollection record: ``{"id": ..., "contents": ..., "vector": {term: weight}}``.

One line of a vectors directory's part files and of a ``--query-vectors`` file: validated
(:func:`check_vector`: the rules in docs/vectors.md, "Reading"), read (:func:`iter_jsonl_vectors`) and formatted
(:class:`LineFormatter`) here; directories are :mod:`.vectors_reader`'s, query files :mod:`.query_vectors`'s.
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys
from typing import Any, Iterator

import numpy as np
import orjson

from .._errors import UsageError
from .jsonl import iter_json_lines, read_id
from .quant import MAX_IMPACT, impact_bound_error
from .spaces import FeatureSpace, PrefixedSpace, safe_term

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


def check_record(obj: dict, where: str, integer: bool = False) -> tuple[str, dict]:
    """``(id, vector)`` of a parsed record, both checked (:func:`~.jsonl.read_id`, :func:`check_vector`)."""
    docid = read_id(obj, where)
    if "vector" not in obj:
        raise UsageError(f"{where}: missing 'vector'")
    return docid, check_vector(obj["vector"], where, integer)


def iter_jsonl_vectors(path: str | os.PathLike, integer: bool = False) -> Iterator[tuple[str, dict, str]]:
    """Stream ``(id, {term: weight}, where)`` from a JSONL file, validating every line
    (``integer``: stored impacts)."""
    for where, obj in iter_json_lines(path):
        yield *check_record(obj, where, integer), where


class LineFormatter:
    """Formats ``{"id", "contents", "vector"}`` lines as UTF-8 bytes, byte for byte what
    ``json.dumps(record, ensure_ascii=False) + "\\n"`` writes, and parses them back (:meth:`parse`).

    How (rows of two zero-padded byte tables gathered per document): docs/vectors.md, "Speed". Keys longer
    than :attr:`MAX_KEY_BYTES` (rare LLM tokens; they would widen every row) and impacts outside
    ``[0, MAX_IMPACT]`` take json.dumps.
    """

    MAX_KEY_BYTES = 40

    def __init__(self, space: FeatureSpace):
        self.space = space
        self._keys: np.ndarray | None = None  # [size, width] uint8: b'"L12": ' zero-padded
        self._long: np.ndarray | None = None  # [size] bool: key beyond MAX_KEY_BYTES (json.dumps path)
        self._prefix: bytes | None = None     # b'"L' for a prefixed space (what :meth:`parse` reads)
        self._entry: bytes | None = None      # b'"L": , ': an entry without its digits (parse_block)

    def _tables(self) -> None:
        if self._keys is not None:
            return
        self._keys, self._keylen, self._long = _key_table(self.space)
        self._any_long = bool(self._long.any())
        width = self._keys.shape[1]
        self._keys_v = self._keys.view(f"V{width}")[:, 0]
        self._imp_v = _impact_table().view(f"V{_IMPACT_WIDTH}")[:, 0]
        self._row = np.dtype([("k", f"V{width}"), ("v", f"V{_IMPACT_WIDTH}")])
        prefix = getattr(self.space, "prefix", None)
        if getattr(self.space, "kind", "") == "prefixed" and prefix:
            self._prefix = b'"' + prefix.encode()
            if not self._any_long and not any(c.isdigit() for c in prefix):
                self._entry = self._prefix + b'": , '

    def head(self, docid: str, contents: str = "") -> bytes:
        return (b'{"id": ' + orjson.dumps(docid) + b', "contents": '
                + (b'""' if not contents else json.dumps(contents, ensure_ascii=False).encode()) + b', "vector": {')

    def line(self, docid: str, ids: np.ndarray, q: np.ndarray, contents: str = "") -> bytes:
        self._tables()
        ids = np.asarray(ids)
        q = np.asarray(q)
        head = self.head(docid, contents)
        if ids.size and not (self._any_long and self._long[ids].any()) and q.min() >= 0 and q.max() <= MAX_IMPACT:
            rows = np.empty(ids.size, self._row)  # [key | impact] per term, one gather into each half
            rows["k"] = self._keys_v[ids]
            rows["v"] = self._imp_v[q]
            b = rows.view(np.uint8)
            return head + b[b != 0].tobytes()[:-2] + b"}}\n"
        vec = dict(zip(self.space.terms(ids), q.tolist()))
        return head[:-1] + json.dumps(vec, ensure_ascii=False).encode() + b"}\n"

    def parse(self, raw: bytes) -> tuple[str, np.ndarray, np.ndarray] | None:
        """``(docid, ids, impacts)`` of a line exactly as :meth:`line` writes it with empty contents,
        impacts in ``[1, MAX_IMPACT]`` and ids strictly increasing; None for any other line (the caller
        then parses it with orjson and validates it term by term, which names what is wrong).

        Only for prefixed spaces (``"L12": 143``: every digit run of the vector is a term's id or its
        impact, alternately). The parse is checked by formatting the result again and comparing the
        bytes, so a line it accepts is one the writer could have written: valid by construction."""
        self._tables()
        if self._prefix is None or not raw.startswith(b'{"id": "'):
            return None
        cut = raw.find(b'", "contents": "", "vector": {', 8)
        if cut < 0 or raw.find(b"\\", 8, cut) >= 0:
            return None
        body = np.frombuffer(raw, dtype=np.uint8, offset=cut + 30)  # from the first term's '"'
        digit = (body >= 48) & (body <= 57)
        edges = np.flatnonzero(digit[1:] != digit[:-1]) + 1
        starts, ends = edges[0::2], edges[1::2]
        n = ends.size // 2
        if n == 0 or edges.size != 4 * n:
            return None
        lens = ends - starts
        if lens.max() > 9:  # int64 holds 9 digits times 10^8 with room: longer is not ours anyway
            return None
        # The value of every digit run at once: each digit times 10^(digits after it in its run).
        pos = np.flatnonzero(digit)
        d = body[pos].astype(np.int64) - 48
        vals = np.add.reduceat(d * _POW10[np.repeat(ends - 1, lens) - pos],
                               np.concatenate(([0], np.cumsum(lens[:-1]))))
        ids, q = vals[0::2], vals[1::2]
        if ids.max() >= self.space.size or q.min() < 1 or q.max() > MAX_IMPACT or (n > 1 and not (ids[1:] > ids[:-1]).all()):
            return None
        try:
            docid = raw[8:cut].decode("utf-8")
        except UnicodeDecodeError:
            return None
        if docid.split() != [docid] or self.line(docid, ids, q) != raw:
            return None
        return docid, ids, q


    def parse_many(self, lines: list[bytes]) -> list[tuple[str, np.ndarray, np.ndarray]] | None:
        """:meth:`parse` of every line at once, as ``(docid, ids, impacts)`` per line, or None when any
        line is not exactly as the writer writes it (the caller then takes the lines one by one)."""
        block = self.parse_block(lines)
        if block is None:
            return None
        docids, ids, q, bounds = block
        b = bounds.tolist()
        return [(docid, ids[x:y], q[x:y]) for docid, x, y in zip(docids, b, b[1:])]

    def parse_block(self, lines: list[bytes]) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray] | None:
        """Every line at once as one block: ``(docids, ids, impacts, bounds)``, line ``j``'s vector
        being ``ids[bounds[j]:bounds[j+1]]`` (numpy's per-call cost paid once per block, not per line),
        or None when any line is not exactly as :meth:`line` writes it (prefixed spaces only). Accepted
        lines are the writer's by construction (the structural check at C speed, then numpy's parser):
        docs/vectors.md, "Reading"."""
        self._tables()
        if self._entry is None or not lines:
            return None
        marker = b'", "contents": "", "vector": {'
        docids, bodies, counts = [], [], []
        for raw in lines:
            cut = raw.find(marker, 8)
            if cut < 0 or not raw.startswith(b'{"id": "') or not raw.endswith(b"}}\n") \
                    or raw.find(b"\\", 8, cut) >= 0:
                return None
            try:
                docid = raw[8:cut].decode("utf-8")
            except UnicodeDecodeError:
                return None
            if docid.split() != [docid] or orjson.dumps(docid)[1:-1] != raw[8:cut]:
                return None
            body = raw[cut + len(marker):-3]  # '"L12": 143, "L907": 88'
            docids.append(docid)
            bodies.append(body)
            counts.append(body.count(b", ") + 1)  # ', ' occurs in an entry only as its end
        blob = b", ".join(bodies) + b", "
        n = sum(counts)
        if blob.translate(None, _DIGITS) != self._entry * n:
            return None
        vals = np.fromstring(blob.translate(_DIGITS_ONLY), dtype=np.int64, sep=" ")  # C strtol per digit run
        if vals.size != 2 * n:  # an empty digit slot ('"L": 5')
            return None
        ids, q = np.ascontiguousarray(vals[0::2]), np.ascontiguousarray(vals[1::2])
        if ids.max() >= self.space.size or q.min() < 1 or q.max() > MAX_IMPACT:
            return None
        # No leading zeros ('"L012"' is not the writer's): the digits in the bytes are exactly as many as
        # the numbers' decimal digits (each run has at least its number's; the sums agree only if all do).
        digits = np.maximum(np.searchsorted(_POW10, vals, side="right"), 1)
        if int(digits.sum()) != len(blob) - n * len(self._entry):
            return None
        bounds = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=bounds[1:])
        if n > 1:
            up = ids[1:] > ids[:-1]
            up[bounds[1:-1] - 1] = True  # a line's first id need not exceed the previous line's last
            if not up.all():
                return None
        return docids, ids, q, bounds

    def lines(self, docids: list[str], ids: np.ndarray, q: np.ndarray, bounds: np.ndarray) -> bytes:
        """:meth:`line` (empty contents) of every document of a block, as one bytes object: document
        ``j``'s vector is ``ids[bounds[j]:bounds[j+1]]`` with impacts ``q[...]``. The tables are
        gathered once for the whole block; each line then costs a slice and its head."""
        self._tables()
        ids, q, bounds = np.asarray(ids), np.asarray(q), np.asarray(bounds)
        if not ids.size or (self._any_long and self._long[ids].any()) or q.min() < 0 or q.max() > MAX_IMPACT \
                or not (bounds[1:] > bounds[:-1]).all():
            b = bounds.tolist()
            return b"".join(self.line(d, ids[x:y], q[x:y]) for d, x, y in zip(docids, b, b[1:]))
        rows = np.empty(ids.size, self._row)
        rows["k"] = self._keys_v[ids]
        rows["v"] = self._imp_v[q]
        u8 = rows.view(np.uint8)
        blob = u8[u8 != 0].tobytes()
        # Where each line's entries end in blob: the cumulated byte length of the entries.
        ends = np.cumsum(self._keylen[ids] + _impact_len()[q])[bounds[1:] - 1].tolist()
        out, start = [], 0
        for docid, end in zip(docids, ends):
            out += (b'{"id": ', orjson.dumps(docid), b', "contents": "", "vector": {', blob[start:end - 2], b"}}\n")
            start = end
        return b"".join(out)


_KEY_TABLES: dict[str, tuple] = {}


def _key_table(space: FeatureSpace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(keys [size, width] uint8, key lengths, too long)`` of a space, built once per space per
    process (a reader and a writer of one space, as in ``encode --prune-from``, share it): each term's
    JSON key and ``": "``, zero-padded to the longest (at most ``LineFormatter.MAX_KEY_BYTES``)."""
    fp = space.fingerprint()
    if fp not in _KEY_TABLES:
        if isinstance(space, PrefixedSpace):  # ASCII letters and digits: nothing to escape
            keys = [f'"{space.prefix}{i}": '.encode() for i in range(space.size)]
        else:
            # json.dumps (ensure_ascii=False) escapes only '"', '\\' and control characters: a printable
            # term without the two is its own JSON text between quotes (one check per term, not a dumps).
            keys = [f'"{t}": '.encode() if t.isprintable() and '"' not in t and "\\" not in t
                    else json.dumps(t, ensure_ascii=False).encode() + b": " for t in space.terms(range(space.size))]
        lens = np.fromiter(map(len, keys), dtype=np.int64, count=len(keys))
        width = int(min(lens.max(), LineFormatter.MAX_KEY_BYTES))
        # numpy's fixed-width bytes pad with NUL (and cut the too-long keys, which take json.dumps).
        table = np.array(keys, dtype=f"S{width}").view(np.uint8).reshape(-1, width)
        if len(_KEY_TABLES) >= 4:
            _KEY_TABLES.clear()
        _KEY_TABLES[fp] = (table, lens, lens > width)
    return _KEY_TABLES[fp]


_IMPACT_WIDTH = len(str(MAX_IMPACT)) + 2


@functools.cache
def _impact_table() -> np.ndarray:
    """Row q: the bytes of ``f"{q}, "`` zero-padded, q in ``[0, MAX_IMPACT]``."""
    return np.array([f"{q}, ".encode() for q in range(MAX_IMPACT + 1)], dtype=f"S{_IMPACT_WIDTH}").view(
        np.uint8).reshape(-1, _IMPACT_WIDTH)


@functools.cache
def _impact_len() -> np.ndarray:
    return np.count_nonzero(_impact_table(), axis=1)


_POW10 = 10 ** np.arange(19, dtype=np.int64)
_DIGITS = b"0123456789"
_DIGITS_ONLY = bytes(c if 48 <= c <= 57 else 32 for c in range(256))  # every non-digit byte -> " "

