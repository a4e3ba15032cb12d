"""Sparse vectors, feature spaces, quantization, and the vectors-directory format.

One type crosses stage borders: :class:`SparseVector` (int64 feature ids sorted ascending, float32
weights). A :class:`FeatureSpace` turns ids into index terms (pseudo-terms such as ``L131071`` for
SAE latents or ``t1234`` for LLM vocabulary ids) and back.

A *vectors directory* is what ``encode`` writes and every index reads::

    part-00000.jsonl   {"id": "d1", "contents": "", "vector": {"L12": 143, "L907": 88}}
    part-00001.jsonl   ...
    meta.json          {"format": "pyserini_splare.vectors/1", "feature_space": {...},
                        "quant_scale": 100, "encoder": ..., "pooling": ..., "stats": {...}}

The ``part-*.jsonl`` files are exactly Pyserini/Anserini's ``JsonVectorCollection`` and what
``seismic.SeismicIndex.build`` reads, so no index needs a conversion step. Weights on disk are
integers: Anserini truncates float impacts silently (2.6 -> 2, 0.4 -> term dropped), so we
quantize once, here, with an explicit scale recorded in ``meta.json``, and report what rounding lost.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

from ._cli import UsageError, atomic_dir, atomic_file, progress

VECTORS_FORMAT = "pyserini_splare.vectors/1"
META_FILE = "meta.json"

# round(w * 100): SPLADE/SPLARE weights are log1p(relu(.)) values, mostly in (0, 5]. A scale of 100
# keeps two decimals (relative error <= 0.5/(100 w): under 1% for w >= 0.5, and drops only w < 0.005),
# matches the scale Pyserini's SPLADE query encoder uses, and keeps an impact of 5.0 at 500 repeated
# term occurrences in Lucene, whose build time and index size grow linearly with the scale.
DEFAULT_QUANT_SCALE = 100.0

# Documents per part file. Anserini indexes a collection with one thread per input file, so a
# single 100k-document part indexed on one core (measured: docs/benchmarks.md); 10,000 keeps every
# thread busy from 20k documents up, and matches the encode CLI's --part-size.
DEFAULT_SHARD_SIZE = 10_000


# --------------------------------------------------------------------------------------------
# Sparse vectors
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SparseVector:
    """A sparse vector: ``ids`` (int64, strictly increasing) and ``weights`` (float32, same length)."""

    ids: np.ndarray
    weights: np.ndarray

    def __post_init__(self):
        ids = np.ascontiguousarray(self.ids, dtype=np.int64)
        w = np.ascontiguousarray(self.weights, dtype=np.float32)
        if ids.ndim != 1 or w.shape != ids.shape:
            raise ValueError(f"ids and weights must be 1-D of equal length, got {ids.shape} and {w.shape}")
        if ids.size > 1 and not np.all(ids[1:] > ids[:-1]):
            order = np.argsort(ids, kind="stable")
            ids, w = ids[order], w[order]
            if np.any(ids[1:] == ids[:-1]):
                raise ValueError("duplicate feature ids in a sparse vector")
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "weights", w)

    @classmethod
    def from_dense(cls, dense: np.ndarray, threshold: float = 0.0) -> "SparseVector":
        """Keep the entries of a 1-D array that are strictly above ``threshold``."""
        dense = np.asarray(dense)
        (nz,) = np.nonzero(dense > threshold)
        return cls(nz.astype(np.int64), dense[nz].astype(np.float32))

    @classmethod
    def from_dict(cls, mapping: Mapping[int, float]) -> "SparseVector":
        ids = np.fromiter(mapping.keys(), dtype=np.int64, count=len(mapping))
        w = np.fromiter(mapping.values(), dtype=np.float32, count=len(mapping))
        return cls(ids, w)

    @property
    def nnz(self) -> int:
        return int(self.ids.size)

    def __len__(self) -> int:
        return self.nnz

    def to_dict(self) -> dict[int, float]:
        return {int(i): float(w) for i, w in zip(self.ids, self.weights)}

    def to_dense(self, size: int) -> np.ndarray:
        out = np.zeros(size, dtype=np.float32)
        out[self.ids] = self.weights
        return out

    def nonzero(self) -> "SparseVector":
        keep = self.weights != 0
        return self if keep.all() else SparseVector(self.ids[keep], self.weights[keep])

    def topk(self, k: int) -> "SparseVector":
        """The ``k`` largest weights (ties broken by the smaller id); ``k <= 0`` keeps everything."""
        if k <= 0 or self.nnz <= k:
            return self
        # lexsort: last key is primary -> weight descending, then id ascending.
        order = np.lexsort((self.ids, -self.weights))[:k]
        order.sort()
        return SparseVector(self.ids[order], self.weights[order])

    def mass_prune(self, mass: float) -> "SparseVector":
        """Keep the fewest largest weights whose sum reaches ``mass`` (0 < mass <= 1) of the total."""
        if not 0 < mass <= 1:
            raise ValueError(f"mass must be in (0, 1], got {mass}")
        if self.nnz == 0:
            return self
        order = np.lexsort((self.ids, -self.weights))
        csum = np.cumsum(self.weights[order], dtype=np.float64)
        n = int(np.searchsorted(csum, mass * csum[-1] - 1e-12) + 1)
        keep = np.sort(order[: min(n, self.nnz)])
        return SparseVector(self.ids[keep], self.weights[keep])

    def dot(self, other: "SparseVector") -> float:
        common, ia, ib = np.intersect1d(self.ids, other.ids, assume_unique=True, return_indices=True)
        return float(np.dot(self.weights[ia].astype(np.float64), other.weights[ib].astype(np.float64)))


@dataclass
class SparseBatch:
    """Rows of sparse vectors in CSR layout (``indptr``, ``indices``, ``data``) over ``n_features``."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    n_features: int

    @classmethod
    def from_vectors(cls, vectors: Iterable[SparseVector], n_features: int) -> "SparseBatch":
        vectors = list(vectors)
        indptr = np.zeros(len(vectors) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([v.nnz for v in vectors])
        indices = np.concatenate([v.ids for v in vectors]) if vectors else np.zeros(0, np.int64)
        data = np.concatenate([v.weights for v in vectors]) if vectors else np.zeros(0, np.float32)
        return cls(indptr, indices.astype(np.int64), data.astype(np.float32), n_features)

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def __getitem__(self, i: int) -> SparseVector:
        a, b = self.indptr[i], self.indptr[i + 1]
        return SparseVector(self.indices[a:b], self.data[a:b])

    def __iter__(self) -> Iterator[SparseVector]:
        return (self[i] for i in range(len(self)))

    def to_scipy(self):
        import scipy.sparse as sp

        return sp.csr_matrix((self.data, self.indices, self.indptr), shape=(len(self), self.n_features))


# --------------------------------------------------------------------------------------------
# Feature spaces: ids <-> index terms
# --------------------------------------------------------------------------------------------


class FeatureSpace:
    """Maps feature ids to index terms and back. Subclasses must be bijective on ``range(size)``."""

    kind: str = ""
    size: int = 0

    def term(self, i: int) -> str:
        raise NotImplementedError

    def id(self, term: str) -> int:
        raise NotImplementedError

    def terms(self, ids: Iterable[int]) -> list[str]:
        # A cached id -> term table: the writer maps ~400 ids per document, 10M documents.
        table = self.__dict__.get("_term_table")
        if table is None:
            table = self._term_table = [self.term(i) for i in range(self.size)]
        ids = ids.tolist() if isinstance(ids, np.ndarray) else ids
        return [table[i] for i in ids]

    def to_meta(self) -> dict[str, Any]:
        raise NotImplementedError

    def fingerprint(self) -> str:
        """A short hash identifying the space: an index refuses query vectors from another space."""
        blob = json.dumps(self.to_meta(), sort_keys=True, ensure_ascii=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @staticmethod
    def from_meta(meta: Mapping[str, Any]) -> "FeatureSpace":
        kind = meta.get("type")
        if kind not in _SPACES:
            raise UsageError(f"unknown feature space type {kind!r} (known: {', '.join(sorted(_SPACES))})")
        return _SPACES[kind].from_meta(meta)

    def __eq__(self, other) -> bool:
        return isinstance(other, FeatureSpace) and self.to_meta() == other.to_meta()

    def __hash__(self) -> int:
        return hash(self.fingerprint())


class PrefixedSpace(FeatureSpace):
    """Pseudo-terms ``{prefix}{id}``: short ASCII that survives Anserini's ``-pretokenized`` and
    fits Seismic's string limit. ``L`` for SAE latents, ``t`` for LLM vocabulary ids."""

    kind = "prefixed"

    def __init__(self, prefix: str, size: int, name: str = ""):
        if not prefix or not prefix.isascii() or not prefix.isalpha():
            raise ValueError(f"prefix must be ASCII letters, got {prefix!r}")
        if size <= 0:
            raise ValueError(f"size must be positive, got {size}")
        self.prefix, self.size, self.name = prefix, int(size), name

    def term(self, i: int) -> str:
        return f"{self.prefix}{i}"

    def id(self, term: str) -> int:
        p = self.prefix
        if not term.startswith(p) or not term[len(p):].isdigit():
            raise KeyError(f"{term!r} is not a term of the {p!r} feature space")
        i = int(term[len(p):])
        if i >= self.size or term != self.term(i):
            raise KeyError(f"{term!r} is outside the {p!r} feature space (size {self.size})")
        return i

    def to_meta(self) -> dict[str, Any]:
        return {"type": self.kind, "prefix": self.prefix, "size": self.size, "name": self.name}

    @classmethod
    def from_meta(cls, meta):
        return cls(meta["prefix"], int(meta["size"]), meta.get("name", ""))

    def __repr__(self) -> str:
        return f"PrefixedSpace({self.prefix!r}, {self.size}, name={self.name!r})"


def _safe_term(s: str) -> bool:
    return bool(s) and s.isprintable() and not any(c.isspace() for c in s)


class VocabSpace(FeatureSpace):
    """A tokenizer vocabulary used as terms (BERT WordPiece strings, as Pyserini's SPLADE does).

    Tokens that are unsafe as whitespace-pretokenized terms (empty, containing spaces or control
    characters) and tokens that look like our fallback become ``{fallback}{id}`` instead, so the
    mapping stays a bijection.
    """

    kind = "vocab"

    def __init__(self, vocab: list[str], name: str = "", fallback: str = "w"):
        self.vocab = list(vocab)
        self.size = len(self.vocab)
        self.name, self.fallback = name, fallback
        self._terms = [
            t if _safe_term(t) and not (t.startswith(fallback) and t[len(fallback):].isdigit()) else f"{fallback}{i}"
            for i, t in enumerate(self.vocab)
        ]
        self._ids = {t: i for i, t in enumerate(self._terms)}
        if len(self._ids) != self.size:
            raise ValueError("vocabulary has duplicate tokens")

    def term(self, i: int) -> str:
        return self._terms[i]

    def id(self, term: str) -> int:
        try:
            return self._ids[term]
        except KeyError:
            raise KeyError(f"{term!r} is not in the vocabulary {self.name!r}") from None

    def to_meta(self) -> dict[str, Any]:
        return {"type": self.kind, "name": self.name, "fallback": self.fallback, "size": self.size, "vocab": self.vocab}

    @classmethod
    def from_meta(cls, meta):
        return cls(list(meta["vocab"]), meta.get("name", ""), meta.get("fallback", "w"))

    def __repr__(self) -> str:
        return f"VocabSpace(size={self.size}, name={self.name!r})"


class CompositeSpace(FeatureSpace):
    """Several spaces side by side (MILCO's English lexical view + LexEcho source-token view).

    Ids are offset by the sizes of the earlier parts; the parts must use distinct term shapes
    (checked on construction by prefix for prefixed parts), so terms never collide across views.
    """

    kind = "composite"

    def __init__(self, parts: list[FeatureSpace], name: str = ""):
        if not parts:
            raise ValueError("a composite space needs at least one part")
        self.parts, self.name = list(parts), name
        self.offsets = np.cumsum([0] + [p.size for p in self.parts]).tolist()
        self.size = int(self.offsets[-1])
        prefixes = [p.prefix for p in self.parts if isinstance(p, PrefixedSpace)]
        if len(set(prefixes)) != len(prefixes):
            raise ValueError(f"composite parts share a prefix: {prefixes}")

    def term(self, i: int) -> str:
        k = int(np.searchsorted(self.offsets, i, side="right") - 1)
        if not 0 <= k < len(self.parts):
            raise KeyError(f"id {i} outside the composite space (size {self.size})")
        return self.parts[k].term(i - self.offsets[k])

    def id(self, term: str) -> int:
        for off, part in zip(self.offsets, self.parts):
            try:
                return off + part.id(term)
            except KeyError:
                continue
        raise KeyError(f"{term!r} is in no part of the composite space {self.name!r}")

    def to_meta(self) -> dict[str, Any]:
        return {"type": self.kind, "name": self.name, "parts": [p.to_meta() for p in self.parts]}

    @classmethod
    def from_meta(cls, meta):
        return cls([FeatureSpace.from_meta(m) for m in meta["parts"]], meta.get("name", ""))


_SPACES: dict[str, type] = {"prefixed": PrefixedSpace, "vocab": VocabSpace, "composite": CompositeSpace}


# --------------------------------------------------------------------------------------------
# Quantization
# --------------------------------------------------------------------------------------------


@dataclass
class QuantStats:
    """What rounding to integers lost, accumulated over many vectors."""

    scale: float
    n_weights: int = 0
    n_zeroed: int = 0  # positive weights that rounded to 0 (the term disappears from the index)
    max_rel_error: float = 0.0  # max |q/scale - w| / w over the weights that were kept
    sum_abs_error: float = 0.0

    def update(self, w: np.ndarray, q: np.ndarray) -> None:
        w = w.astype(np.float64)
        self.n_weights += int(w.size)
        kept = q > 0
        self.n_zeroed += int(np.count_nonzero(~kept))
        if kept.any():
            err = np.abs(q[kept] / self.scale - w[kept])
            self.max_rel_error = max(self.max_rel_error, float(np.max(err / w[kept])))
            self.sum_abs_error += float(err.sum())

    def to_meta(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "weights": self.n_weights,
            "zeroed": self.n_zeroed,
            "zeroed_fraction": self.n_zeroed / self.n_weights if self.n_weights else 0.0,
            "max_rel_error": self.max_rel_error,
        }

    def summary(self) -> str:
        m = self.to_meta()
        return (f"quantization x{self.scale:g}: {m['weights']:,} weights, {m['zeroed']:,} rounded to 0 "
                f"({100 * m['zeroed_fraction']:.3f}%), max relative error of kept weights {m['max_rel_error']:.4f}")


def quantize(weights: np.ndarray, scale: float) -> np.ndarray:
    """``round(w * scale)`` as int64 (round half to even, like numpy)."""
    if not scale > 0 or not math.isfinite(scale):
        raise ValueError(f"quantization scale must be a positive finite number, got {scale}")
    return np.rint(np.asarray(weights, dtype=np.float64) * scale).astype(np.int64)


def quantize_vector(vec: SparseVector, scale: float, stats: QuantStats | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Quantized ``(ids, int weights)`` with zeros removed; updates ``stats`` if given."""
    q = quantize(vec.weights, scale)
    if stats is not None:
        stats.update(vec.weights, q)
    keep = q > 0
    return vec.ids[keep], q[keep]


# --------------------------------------------------------------------------------------------
# Validation of vectors read from files (untrusted input)
# --------------------------------------------------------------------------------------------


_WHITESPACE = re.compile(r"\s")
_NUMBER_TYPES = {int, float}


def _vector_is_clean(vector: dict) -> bool:
    """The checks of :func:`check_weights` done over the whole vector at C speed: terms are checked
    joined (whitespace and printability are properties of each character), weights as one array.
    Documents hold hundreds of terms and a collection millions of documents; the term-by-term loop
    only runs to name the culprit when this says no."""
    if "" in vector:
        return False
    joined = "".join(vector)
    if not joined.isprintable() or _WHITESPACE.search(joined):
        return False
    if not set(map(type, vector.values())) <= _NUMBER_TYPES:  # bool is its own type: refused
        return False
    try:
        w = np.fromiter(vector.values(), np.float64, len(vector))
    except OverflowError:  # an integer beyond float range
        return False
    return bool(np.isfinite(w).all() and (w >= 0).all())


def check_weights(vector: Any, where: str) -> dict[str, float]:
    """Validate a ``{term: weight}`` mapping read from a file; raise UsageError naming ``where``."""
    if not isinstance(vector, dict):
        raise UsageError(f"{where}: 'vector' must be an object of term: weight, got {type(vector).__name__}")
    if not vector:
        raise UsageError(f"{where}: empty vector")
    if _vector_is_clean(vector):
        return vector
    for term, w in vector.items():
        if not _safe_term(term):
            raise UsageError(f"{where}: term {term!r} is empty or contains whitespace/control characters")
        if isinstance(w, bool) or not isinstance(w, (int, float)):
            raise UsageError(f"{where}: weight of {term!r} is not a number: {w!r}")
        try:
            finite = math.isfinite(w)
        except OverflowError:  # an integer beyond float range
            finite = False
        if not finite:
            raise UsageError(f"{where}: weight of {term!r} is {w if isinstance(w, float) else 'too large'} (must be finite)")
        if w < 0:
            raise UsageError(f"{where}: weight of {term!r} is negative ({w})")
    return vector  # the term-by-term checks are the reference


def _parse_json_line(line: str, where: str) -> dict:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise UsageError(f"{where}: malformed JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(obj, dict):
        raise UsageError(f"{where}: expected a JSON object")
    return obj


def _read_id(obj: dict, where: str) -> str:
    if "id" not in obj:
        raise UsageError(f"{where}: missing 'id'")
    i = obj["id"]
    if isinstance(i, bool) or not isinstance(i, (str, int)) or str(i).strip() == "" or any(c.isspace() for c in str(i)):
        raise UsageError(f"{where}: 'id' must be a non-empty string without whitespace, got {i!r}")
    return str(i)


def iter_json_lines(path: str | os.PathLike, opener=open) -> Iterator[tuple[str, dict]]:
    """Stream ``(where, object)`` from a JSONL file, ``where`` being ``file:line``; blank lines are
    skipped, and non-UTF-8 bytes, malformed JSON or a non-object line raise a one-line UsageError."""
    path = Path(path)
    try:
        f = opener(path, "rb")
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    with f:
        for n, raw in enumerate(f, 1):
            where = f"{path}:{n}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise UsageError(f"{where}: not valid UTF-8") from None
            if line.strip():
                yield where, _parse_json_line(line, where)


def iter_jsonl_vectors(path: str | os.PathLike) -> Iterator[tuple[str, dict[str, float], str]]:
    """Stream ``(id, {term: weight}, where)`` from a JSONL file, validating every line."""
    for where, obj in iter_json_lines(path):
        docid = _read_id(obj, where)
        if "vector" not in obj:
            raise UsageError(f"{where}: missing 'vector'")
        yield docid, check_weights(obj["vector"], where), where


def read_query_vectors(path: str | os.PathLike) -> dict[str, dict[str, float]]:
    """Read a ``--query-vectors`` JSONL file: one ``{"id": qid, "vector": {term: weight}}`` per line."""
    out: dict[str, dict[str, float]] = {}
    for qid, vec, where in iter_jsonl_vectors(path):
        if qid in out:
            raise UsageError(f"{where}: duplicate id {qid!r}")
        out[qid] = vec
    if not out:
        raise UsageError(f"{path}: no query vectors")
    return out


# --------------------------------------------------------------------------------------------
# Vectors directories
# --------------------------------------------------------------------------------------------


def _id_hash(docid: str) -> int:
    return int.from_bytes(hashlib.blake2b(docid.encode(), digest_size=8).digest(), "little", signed=True)


@dataclass
class VectorsMeta:
    """The ``meta.json`` of a vectors directory (and, copied, of every index built from it)."""

    feature_space: dict[str, Any]
    quant_scale: float
    encoder: dict[str, Any] = field(default_factory=dict)
    pooling: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    format: str = VECTORS_FORMAT

    @property
    def space(self) -> FeatureSpace:
        return FeatureSpace.from_meta(self.feature_space)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "feature_space": self.feature_space,
            "feature_space_fingerprint": FeatureSpace.from_meta(self.feature_space).fingerprint(),
            "quant_scale": self.quant_scale,
            "encoder": self.encoder,
            "pooling": self.pooling,
            "stats": self.stats,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], where: str = "meta.json") -> "VectorsMeta":
        if obj.get("format") != VECTORS_FORMAT:
            raise UsageError(f"{where}: not a pyserini_splare vectors meta (format {obj.get('format')!r})")
        try:
            return cls(
                feature_space=dict(obj["feature_space"]),
                quant_scale=float(obj["quant_scale"]),
                encoder=dict(obj.get("encoder") or {}),
                pooling=dict(obj.get("pooling") or {}),
                stats=dict(obj.get("stats") or {}),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise UsageError(f"{where}: incomplete metadata ({e})") from None


def read_meta(vectors_dir: str | os.PathLike) -> VectorsMeta:
    d = Path(vectors_dir)
    if not d.is_dir():
        raise UsageError(f"{d} is not a directory")
    p = d / META_FILE
    if not p.is_file():
        raise UsageError(f"{d} has no {META_FILE}: not a vectors directory written by pyserini_splare.encode")
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"{p}: malformed JSON ({e})") from None
    return VectorsMeta.from_json(obj, str(p))


def part_files(vectors_dir: str | os.PathLike) -> list[Path]:
    parts = sorted(Path(vectors_dir).glob("part-*.jsonl"))
    if not parts:
        raise UsageError(f"{vectors_dir} holds no part-*.jsonl files")
    return parts


def iter_vectors(vectors_dir: str | os.PathLike) -> Iterator[tuple[str, dict[str, float]]]:
    """Stream ``(docid, {term: int weight})`` over every part of a vectors directory, validated."""
    for part in part_files(vectors_dir):
        for docid, vec, _ in iter_jsonl_vectors(part):
            yield docid, vec


def validate_vectors_dir(vectors_dir: str | os.PathLike, space: "FeatureSpace | None" = None,
                         max_id_length: int | None = None, desc: str = "validating vectors") -> tuple[int, int, int]:
    """One streaming pass that index builders run before handing part files to Lucene or Seismic:
    every line valid (:func:`iter_jsonl_vectors`), integer weights (Lucene truncates floats), no
    duplicate id, and, when given, ids no longer than ``max_id_length`` and terms of ``space``.
    Returns ``(documents, postings, distinct terms)``.

    Duplicate ids are found from 8-byte hashes sorted at the end (not a set of strings), then named by
    a second pass only when there is one; terms are checked once each (set difference in C).
    """
    hashes = array("q")
    known: set[str] = set()
    n_post = 0
    for docid, vec in progress(iter_vectors(vectors_dir), desc=desc, unit="doc"):
        if not set(map(type, vec.values())) <= {int}:
            term, w = next((t, w) for t, w in vec.items() if type(w) is not int)
            raise UsageError(f"{vectors_dir}: document {docid!r} has non-integer weight {w!r} for {term!r} "
                             "(Lucene truncates floats silently; quantize with the writer)")
        if max_id_length is not None and len(docid) > max_id_length:
            raise UsageError(f"{vectors_dir}: document id {docid[:20]!r}... is longer than {max_id_length} characters")
        new = vec.keys() - known
        if space is not None:
            for t in new:
                try:
                    space.id(t)
                except KeyError as e:
                    raise UsageError(f"{vectors_dir}: document {docid!r}: {e.args[0]}") from None
        known |= new
        hashes.append(_id_hash(docid))
        n_post += len(vec)
    h = np.frombuffer(hashes, dtype=np.int64).copy()
    del hashes
    h.sort()
    same = h[1:] == h[:-1]
    if same.any():
        dups = set(h[1:][same].tolist())
        docid = next(d for d, _ in iter_vectors(vectors_dir) if _id_hash(d) in dups)
        raise UsageError(f"{vectors_dir}: duplicate document id {docid!r}")
    return int(h.size), n_post, len(known)


class VectorWriter:
    """Writes a vectors directory: sharded ``part-*.jsonl`` with integer weights + ``meta.json``.

    Use as a context manager. Everything is written under ``OUT.partial`` and renamed to ``OUT``
    only when the block ends without error, after checking that no document id repeats (ids are
    kept as 64-bit hashes, 8 bytes per document, never as strings).
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        space: FeatureSpace,
        quant_scale: float = DEFAULT_QUANT_SCALE,
        *,
        shard_size: int = DEFAULT_SHARD_SIZE,
        encoder: Mapping[str, Any] | None = None,
        pooling: Mapping[str, Any] | None = None,
        overwrite: bool = False,
    ):
        if shard_size <= 0:
            raise ValueError("shard_size must be positive")
        quantize(np.zeros(1), quant_scale)  # validates the scale
        self.out_dir, self.space, self.scale = Path(out_dir), space, float(quant_scale)
        self.shard_size, self.overwrite = shard_size, overwrite
        self.encoder, self.pooling = dict(encoder or {}), dict(pooling or {})
        self.stats = QuantStats(self.scale)
        self.n_docs = 0
        self.n_postings = 0
        self.n_empty_after_quant = 0
        self._hashes: list[np.ndarray] = []
        self._cur = array("q")  # this part's id hashes, 8 bytes each
        self._f = None
        self._part = 0

    def __enter__(self) -> "VectorWriter":
        self._ctx = atomic_dir(self.out_dir, overwrite=self.overwrite)
        self._dir = self._ctx.__enter__()
        return self

    def _open_part(self):
        if self._f is None:
            self._f = open(self._dir / f"part-{self._part:05d}.jsonl", "w", encoding="utf-8")
            self._in_part = 0

    def write(self, docid: str, vector: SparseVector, contents: str = "") -> None:
        if not isinstance(docid, str) or not docid or any(c.isspace() for c in docid):
            raise UsageError(f"document id must be a non-empty string without whitespace, got {docid!r}")
        w = vector.weights
        if w.size == 0:
            raise UsageError(f"document {docid!r}: empty vector")
        if not np.all(np.isfinite(w)):
            raise UsageError(f"document {docid!r}: weight is NaN or infinite")
        if np.any(w < 0):
            raise UsageError(f"document {docid!r}: negative weight")
        ids, q = quantize_vector(vector, self.scale, self.stats)
        if ids.size == 0:
            # Every weight rounded to 0: the document has no term left, no index could ever return
            # it, and readers refuse empty vectors. Count it (meta.json) instead of writing it.
            self.n_empty_after_quant += 1
            return
        terms = self.space.terms(ids)
        self._open_part()
        rec = {"id": docid, "contents": contents, "vector": dict(zip(terms, q.tolist()))}
        self._f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self._cur.append(_id_hash(docid))
        self.n_docs += 1
        self.n_postings += int(ids.size)
        self._in_part += 1
        if self._in_part >= self.shard_size:
            self._close_part()

    def _close_part(self):
        if self._f is not None:
            self._f.close()
            self._f = None
            self._part += 1
            self._hashes.append(np.frombuffer(self._cur, dtype=np.int64).copy())
            self._cur = array("q")

    def _check_duplicates(self):
        # Sort in place and compare neighbours: 8 bytes per document plus a 1-byte mask, where
        # np.unique(return_counts=True) would hold three such arrays at once.
        hashes = np.concatenate(self._hashes) if self._hashes else np.zeros(0, np.int64)
        self._hashes = []
        hashes.sort()
        same = hashes[1:] == hashes[:-1]
        if not same.any():
            return
        dup_hashes = set(hashes[1:][same].tolist())
        for docid, _ in iter_vectors(self._dir):
            if _id_hash(docid) in dup_hashes:
                raise UsageError(f"duplicate document id {docid!r}")
        raise UsageError("duplicate document ids (64-bit hash collision)")

    def __exit__(self, exc_type, exc, tb):
        try:
            self._close_part()
            if exc_type is None:
                if self.n_docs == 0:
                    raise UsageError("no documents were written")
                self._check_duplicates()
                stats = {
                    "documents": self.n_docs,
                    "postings": self.n_postings,
                    "mean_terms_per_doc": self.n_postings / self.n_docs,
                    "empty_after_quantization": self.n_empty_after_quant,
                    "quantization": self.stats.to_meta(),
                }
                meta = VectorsMeta(self.space.to_meta(), self.scale, self.encoder, self.pooling, stats)
                with atomic_file(self._dir / META_FILE) as f:
                    json.dump(meta.to_json(), f, indent=1)
        except BaseException as e:
            self._ctx.__exit__(type(e), e, e.__traceback__)
            raise
        return self._ctx.__exit__(exc_type, exc, tb)


def copy_vectors_dir(src: str | os.PathLike, dst: str | os.PathLike, transform=None, *, quant_scale: float | None = None,
                     overwrite: bool = False) -> VectorsMeta:
    """Rewrite a vectors directory through ``transform(SparseVector) -> SparseVector`` (e.g. pruning).

    ``quant_scale``: re-quantize at another scale (None keeps the source's). Re-quantizing at the
    source's scale is exact (stored weights are multiples of 1/scale); at another scale each weight
    becomes ``round(q * s / s_src)`` of its stored integer ``q`` (exact halves may go either way in
    floating point), which can differ by one step from ``round(w * s)`` of the original float.
    """
    meta = read_meta(src)
    space = meta.space
    transform = transform or (lambda v: v)
    scale = meta.quant_scale if quant_scale is None else float(quant_scale)
    with VectorWriter(dst, space, scale, encoder=meta.encoder, pooling=meta.pooling, overwrite=overwrite) as w:
        for docid, vec in iter_vectors(src):
            ids = np.fromiter((space.id(t) for t in vec), dtype=np.int64, count=len(vec))
            weights = np.fromiter(vec.values(), dtype=np.float64, count=len(vec)) / meta.quant_scale
            w.write(docid, transform(SparseVector(ids, weights)))
    return read_meta(dst)
