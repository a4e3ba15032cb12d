"""Feature spaces: a bijection between feature ids ``range(size)`` and index terms (docs/vectors.md).

Pseudo-terms (:class:`PrefixedSpace`, ``L131071``), a tokenizer's vocabulary (:class:`VocabSpace`), views side
by side (:class:`CompositeSpace`), or a foreign collection's terms (:class:`ForeignSpace`).
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from typing import Any, Iterable, Mapping

import numpy as np

from .._errors import UsageError


def safe_term(s: str) -> bool:
    """A term survives Anserini's ``-pretokenized`` whitespace split: non-empty, printable, no whitespace."""
    return bool(s) and s.isprintable() and not any(c.isspace() for c in s)


class FeatureSpace(ABC):
    """Maps feature ids to index terms and back. Subclasses must be bijective on ``range(size)``."""

    kind: str = ""
    size: int = 0

    @abstractmethod
    def term(self, i: int) -> str:
        ...

    @abstractmethod
    def id(self, term: str) -> int:
        ...

    def terms(self, ids: Iterable[int]) -> list[str]:
        # A cached id -> term table: the writer maps ~400 ids per document, 10M documents.
        table = self.__dict__.get("_term_table")
        if table is None:
            table = self._term_table = [self.term(i) for i in range(self.size)]
        ids = ids.tolist() if isinstance(ids, np.ndarray) else ids
        return [table[i] for i in ids]

    def ids(self, terms: Iterable[str]) -> np.ndarray:
        """Feature ids of ``terms`` (int64) through a cached term -> id table: ``encode --prune-from``
        and the index builders map ~400 terms per document, millions of documents; a method call
        per term costs ~10x a dict lookup. An unknown term raises KeyError naming it."""
        table = self.__dict__.get("_id_table")
        if table is None:
            table = self._id_table = {self.term(i): i for i in range(self.size)}
        try:
            return np.fromiter(map(table.__getitem__, terms), dtype=np.int64)
        except KeyError as e:
            self.id(e.args[0])  # raises the space's own message
            raise

    @abstractmethod
    def to_meta(self) -> dict[str, Any]:
        ...

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


class _TermList(FeatureSpace):
    """A space whose terms are a list: a term's id is its position."""

    def _set_terms(self, terms: list[str], duplicates: str, missing: str) -> None:
        self._terms, self.size, self._missing = terms, len(terms), missing
        self._ids = self._id_table = {t: i for i, t in enumerate(terms)}
        if len(self._ids) != self.size:
            raise ValueError(duplicates)

    def term(self, i: int) -> str:
        return self._terms[i]

    def id(self, term: str) -> int:
        try:
            return self._ids[term]
        except KeyError:
            raise KeyError(f"{term!r} {self._missing}") from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, name={self.name!r})"


class VocabSpace(_TermList):
    """A tokenizer vocabulary used as terms (BERT WordPiece strings, as Pyserini's SPLADE does).

    Tokens that are unsafe as whitespace-pretokenized terms (empty, containing spaces or control
    characters) and tokens that look like our fallback become ``{fallback}{id}`` instead, so the
    mapping stays a bijection.
    """

    kind = "vocab"

    def __init__(self, vocab: list[str], name: str = "", fallback: str = "w"):
        self.vocab = list(vocab)
        self.name, self.fallback = name, fallback
        terms = [
            t if safe_term(t) and not (t.startswith(fallback) and t[len(fallback):].isdigit()) else f"{fallback}{i}"
            for i, t in enumerate(self.vocab)
        ]
        self._set_terms(terms, "vocabulary has duplicate tokens", f"is not in the vocabulary {name!r}")

    def to_meta(self) -> dict[str, Any]:
        return {"type": self.kind, "name": self.name, "fallback": self.fallback, "size": self.size, "vocab": self.vocab}

    @classmethod
    def from_meta(cls, meta):
        return cls(list(meta["vocab"]), meta.get("name", ""), meta.get("fallback", "w"))


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


class ForeignSpace(_TermList):
    """The terms of a JsonVectorCollection this toolkit did not write (no ``meta.json``): opaque strings.

    Built by the index builders from the terms the documents use, sorted (so the id of a term does
    not depend on document order); ids are positions in that list. Nothing is known of the encoder,
    so a query must come as ``--query-vectors`` in the same terms. Recorded as ``"type": "foreign"``
    in the index metadata so that readers know where the space came from.
    """

    kind = "foreign"

    def __init__(self, terms: Iterable[str], name: str = ""):
        self.name = name
        self._set_terms(list(terms), "foreign space has duplicate terms",
                        "is not a term of the collection's (foreign) space")

    def to_meta(self) -> dict[str, Any]:
        return {"type": self.kind, "name": self.name, "size": self.size, "terms": self._terms}

    @classmethod
    def from_meta(cls, meta):
        return cls(list(meta["terms"]), meta.get("name", ""))


_SPACES: dict[str, type] = {"prefixed": PrefixedSpace, "vocab": VocabSpace, "composite": CompositeSpace,
                            "foreign": ForeignSpace}
