"""TREC run files (``qid Q0 docid rank score tag``): reading with validation, ranking order, and writing.

Every stage reads runs through :func:`read_trec_run`, so a file in another format is one line naming
``file:line``; within a query hits rank by score descending, ties by docid ascending (:func:`ranked`).
"""

from __future__ import annotations

import math
import os
from typing import Mapping

from .._errors import UsageError

Run = dict[str, dict[str, float]]


def read_trec_run(path: str | os.PathLike, *, allow_empty: bool = False) -> Run:
    """Read a TREC run into ``{qid: {docid: score}}``; malformed input raises a one-line UsageError.

    Checks: six fields per line, second field ``Q0`` (or ``0``, written by some tools), an integer
    rank, a finite score, no docid twice for one query. Blank lines are skipped.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise UsageError(f"run file {path} does not exist")
    if os.path.isdir(path):
        raise UsageError(f"run file {path} is a directory")
    run: Run = {}
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                parts = line.split()
                where = f"{path}:{n}"
                if len(parts) != 6:
                    raise UsageError(f"{where}: not a TREC run line (expected 6 fields `qid Q0 docid rank "
                                     f"score tag`, got {len(parts)}): {line.strip()[:80]!r}")
                qid, q0, docid, rank, score, _tag = parts
                if q0 not in ("Q0", "0", "q0"):
                    raise UsageError(f"{where}: not a TREC run line (second field must be Q0, got {q0!r})")
                try:
                    int(rank)
                except ValueError:
                    raise UsageError(f"{where}: rank must be an integer, got {rank!r}") from None
                try:
                    s = float(score)
                except ValueError:
                    raise UsageError(f"{where}: score must be a number, got {score!r}") from None
                if not math.isfinite(s):
                    raise UsageError(f"{where}: score must be finite, got {score!r}")
                hits = run.setdefault(qid, {})
                if docid in hits:
                    raise UsageError(f"{where}: document {docid!r} appears twice for query {qid!r}")
                hits[docid] = s
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a text file (TREC run expected)") from None
    if not run and not allow_empty:
        raise UsageError(f"run file {path} is empty")
    return run


def ranked(hits: Mapping[str, float], depth: int | None = None) -> list[tuple[str, float]]:
    """A query's hits in rank order (score desc, docid asc), cut at ``depth`` when given."""
    out = sorted(hits.items(), key=lambda h: (-h[1], h[0]))
    return out if depth is None else out[:depth]


def write_run(path: str | os.PathLike, run: Mapping[str, Mapping[str, float]], tag: str, k: int | None = None,
              order=None) -> int:
    """Write ``{qid: {docid: score}}`` as a TREC run (ranked, cut at ``k``), atomically.

    Scores are written with 9 significant digits (not a fixed 6 decimals): fused RRF scores such as
    1/61 + 1/62 differ in the 6th decimal, and rounding them would create ties the ranks do not have.
    """
    from .._outputs import atomic_file

    if not tag or any(c.isspace() for c in tag):
        raise UsageError(f"run tag must be non-empty without whitespace, got {tag!r}")
    qids = list(order) if order is not None else sorted(run)
    n = 0
    with atomic_file(path) as f:
        for qid in qids:
            for rank, (docid, score) in enumerate(ranked(run.get(qid, {}), k), 1):
                f.write(f"{qid} Q0 {docid} {rank} {score:.9g} {tag}\n")
                n += 1
    return n
