"""The training-data format: FlagEmbedding's JSONL, read as a stream and validated line by line.

``{"query", "pos", "neg", "pos_scores"?, "neg_scores"?, "prompt"?}`` per line (docs/training.md, "Training
data"); a violation is one line naming ``file:line``. :func:`training_rows` gives sentence-transformers'
columns; which positive and negatives are used is drawn from ``seed`` and the line number, so a rerun (or a
resumed run) sees the same rows.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass
from typing import Iterator

from .._errors import UsageError

KEYS = ("query", "pos", "neg", "pos_scores", "neg_scores", "prompt")
LABEL = "label"  # the column name sentence-transformers' trainer passes to a loss as `labels`


@dataclass(frozen=True)
class Example:
    query: str
    pos: tuple[str, ...]
    neg: tuple[str, ...]
    pos_scores: tuple[float, ...] | None
    neg_scores: tuple[float, ...] | None
    prompt: str | None
    where: str  # file:line

    @property
    def has_scores(self) -> bool:
        return self.pos_scores is not None

    @property
    def query_text(self) -> str:
        return f"{self.prompt}{self.query}" if self.prompt else self.query


def _texts(obj: dict, key: str, where: str) -> tuple[str, ...]:
    v = obj.get(key, [])
    if not isinstance(v, list):
        raise UsageError(f"{where}: {key!r} must be a list of strings, got {type(v).__name__}")
    for i, t in enumerate(v):
        if not isinstance(t, str) or not t.strip():
            raise UsageError(f"{where}: {key}[{i}] must be a non-empty string, got {t!r}"[:300])
    return tuple(v)


def _scores(obj: dict, key: str, n: int, where: str) -> tuple[float, ...] | None:
    if key not in obj or obj[key] is None:
        return None
    v = obj[key]
    if not isinstance(v, list):
        raise UsageError(f"{where}: {key!r} must be a list of numbers, got {type(v).__name__}")
    if len(v) != n:
        raise UsageError(f"{where}: {key} has {len(v)} scores for {n} texts")
    for i, s in enumerate(v):
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s):
            raise UsageError(f"{where}: {key}[{i}] must be a finite number, got {s!r}")
    return tuple(float(s) for s in v)


def parse_example(obj: dict, where: str) -> Example:
    """Validate one decoded JSON line."""
    unknown = sorted(set(obj) - set(KEYS))
    if unknown:
        raise UsageError(f"{where}: unknown keys {unknown} (known: {', '.join(KEYS)})")
    q = obj.get("query")
    if not isinstance(q, str) or not q.strip():
        raise UsageError(f"{where}: 'query' must be a non-empty string, got {q!r}"[:300])
    pos = _texts(obj, "pos", where)
    if not pos:
        raise UsageError(f"{where}: no positives ('pos' is missing or empty)")
    neg = _texts(obj, "neg", where)
    ps = _scores(obj, "pos_scores", len(pos), where)
    ns = _scores(obj, "neg_scores", len(neg), where)
    if (ps is None) != (ns is None):
        raise UsageError(f"{where}: 'pos_scores' and 'neg_scores' must be given together")
    prompt = obj.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        raise UsageError(f"{where}: 'prompt' must be a string, got {type(prompt).__name__}")
    return Example(q, pos, neg, ps, ns, prompt or None, where)


def iter_examples(path: str | os.PathLike, *, negatives: int = 0, need_scores: bool = False) -> Iterator[Example]:
    """Stream validated examples; each must have at least ``negatives`` negatives, and teacher scores
    when ``need_scores`` (distillation losses)."""
    from ..formats.jsonl import iter_json_lines  # the one JSONL line reader (file:line errors)

    if negatives < 0:
        raise UsageError(f"negatives must be >= 0, got {negatives}")
    n = 0
    for where, obj in iter_json_lines(path):
        ex = parse_example(obj, where)
        if len(ex.neg) < negatives:
            raise UsageError(f"{where}: {len(ex.neg)} negatives, fewer than the {negatives} asked for "
                             "(lower --negatives, or mine deeper with train.data --depth)")
        if need_scores and not ex.has_scores:
            raise UsageError(f"{where}: no teacher scores (pos_scores/neg_scores), which a distillation loss needs "
                             "(use --loss infonce, or mine with train.data --teacher)")
        n += 1
        yield ex
    if n == 0:
        raise UsageError(f"{path}: no training examples")


def first_has_scores(path: str | os.PathLike) -> bool:
    """Whether the first example carries teacher scores (picks the default loss)."""
    for ex in iter_examples(path):
        return ex.has_scores
    return False  # unreachable: iter_examples raises on an empty file


def columns(negatives: int, with_label: bool) -> list[str]:
    return ["query", "positive"] + [f"negative_{i}" for i in range(1, negatives + 1)] + ([LABEL] if with_label else [])


def training_row(ex: Example, index: int, negatives: int, with_label: bool, seed: int) -> dict:
    """One row: a positive and ``negatives`` negatives drawn (without replacement) from the line's lists by a
    generator seeded with (seed, line index) — deterministic, independent of batch order and of resuming."""
    rng = random.Random(seed * 1_000_003 + index)
    p = rng.randrange(len(ex.pos))
    negs = rng.sample(range(len(ex.neg)), negatives) if negatives else []
    row = {"query": ex.query_text, "positive": ex.pos[p]}
    for i, j in enumerate(negs, 1):
        row[f"negative_{i}"] = ex.neg[j]
    if with_label:
        row[LABEL] = [ex.pos_scores[p]] + [ex.neg_scores[j] for j in negs]
    return row


def training_rows(path: str | os.PathLike, negatives: int, with_label: bool, seed: int) -> Iterator[dict]:
    """Stream rows in :func:`columns` layout from a training JSONL file."""
    for i, ex in enumerate(iter_examples(path, negatives=negatives, need_scores=with_label)):
        yield training_row(ex, i, negatives, with_label, seed)
