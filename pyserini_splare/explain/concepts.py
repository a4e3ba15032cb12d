"""Bag-of-concepts explanations: a sparse vector's strongest features with their weights and labels.

SAE latents have no surface form, so the SPLARE paper (Tables 1 and 9) lists a representation's top latents
with an automated-interpretability description of each (Neuronpedia); a vocabulary space's term is its own
label. The labels file (Neuronpedia's explanation export; ``index`` is the ``123`` of ``L123``): docs/explain.md.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .._errors import UsageError

NO_LABEL = "(no label)"
_PSEUDO = re.compile(r"^[A-Za-z]+(\d+)$")


@dataclass(frozen=True)
class Row:
    """One explained feature: rank (1-based), feature id, index term, weight, label (None if unknown)."""

    rank: int
    feature: int | None
    term: str
    weight: float
    label: str | None


def load_labels(path: str | os.PathLike, layer: str | None = None) -> dict[int, str]:
    """Read a Neuronpedia explanation export (JSON list or JSONL) into ``{feature index: description}``.

    ``layer`` keeps only entries whose ``layer`` field equals it; without it, a file mixing several
    layers (SAEs) is an error, since the same index means different latents in different SAEs.
    """
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"labels file {p} does not exist")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{p}: not valid UTF-8") from None
    entries: list[tuple[str, Any]] = []
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise UsageError(f"{p}: malformed JSON ({e.msg} at line {e.lineno})") from None
        entries = [(f"{p}: entry {i + 1}", obj) for i, obj in enumerate(data)]
    else:
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                entries.append((f"{p}:{n}", json.loads(line)))
            except json.JSONDecodeError as e:
                raise UsageError(f"{p}:{n}: malformed JSON ({e.msg}); expected a Neuronpedia export "
                                 f"(JSON list or JSONL of {{\"index\", \"description\"}})") from None
    labels: dict[int, str] = {}
    layers: set[str] = set()
    for where, obj in entries:
        if not isinstance(obj, dict):
            raise UsageError(f"{where}: expected an object with 'index' and 'description'")
        if "index" not in obj:
            raise UsageError(f"{where}: missing 'index' (the feature number)")
        if "description" not in obj or not isinstance(obj["description"], str):
            raise UsageError(f"{where}: missing 'description' (the feature's label)")
        idx = obj["index"]
        if isinstance(idx, bool) or not (isinstance(idx, int) or (isinstance(idx, str) and idx.strip().isdigit())):
            raise UsageError(f"{where}: 'index' must be a non-negative integer, got {idx!r}")
        if layer is not None and obj.get("layer") != layer:
            continue
        if "layer" in obj:
            layers.add(str(obj["layer"]))
        labels.setdefault(int(idx), " ".join(obj["description"].split()))
    if layer is None and len(layers) > 1:
        raise UsageError(f"{p} mixes labels of {len(layers)} SAEs ({', '.join(sorted(layers)[:3])}...): "
                         f"pass --layer to pick one")
    if not labels:
        raise UsageError(f"{p}: no labels" + (f" for layer {layer!r}" if layer else ""))
    return labels


def _feature_id(term: str, space) -> int | None:
    if space is not None:
        try:
            return int(space.id(term))
        except KeyError:
            return None
    m = _PSEUDO.match(term)
    return int(m.group(1)) if m else None


def explain_vector(vector, space=None, labels: Mapping[int, str] | None = None, top: int = 10) -> list[Row]:
    """The ``top`` strongest features of ``vector`` as :class:`Row`s (weight desc, ties by term).

    ``vector``: a :class:`~pyserini_splare.vectors.SparseVector` (with its ``space``) or a ``{term: weight}``
    mapping; ``labels`` from :func:`load_labels` (a vocabulary space needs none: the term is the label).
    """
    if top <= 0:
        raise ValueError(f"top must be positive, got {top}")
    from ..vectors import SparseVector

    if isinstance(vector, SparseVector):
        if space is None:
            raise ValueError("a SparseVector needs its feature space to name its features")
        items = [(space.term(int(i)), float(w), int(i)) for i, w in zip(vector.ids, vector.weights)]
    elif isinstance(vector, Mapping):
        items = [(str(t), float(w), _feature_id(str(t), space)) for t, w in vector.items()]
    else:
        raise TypeError(f"expected a SparseVector or a {{term: weight}} mapping, got {type(vector).__name__}")
    items = [it for it in items if it[1] != 0 and np.isfinite(it[1])]
    items.sort(key=lambda it: (-it[1], it[0]))
    rows = []
    for rank, (term, w, fid) in enumerate(items[:top], 1):
        label = labels.get(fid) if labels is not None and fid is not None else None
        rows.append(Row(rank, fid, term, w, label))
    return rows


def format_rows(rows: list[Row], width: int = 24, show_labels: bool = True) -> str:
    """A text table like the SPLARE paper's Tables 1 and 9: rank, feature, bar scaled to the top weight, weight, label."""
    if not rows:
        return "(empty vector)"
    top = max(abs(r.weight) for r in rows) or 1.0
    tw = max(len(r.term) for r in rows)
    lines = []
    for r in rows:
        bar = "█" * max(1, round(width * abs(r.weight) / top))
        line = f"{r.rank:>3}  {r.term:<{tw}}  {bar:<{width}}  {r.weight:8.3f}"
        if show_labels:
            line += f"  {r.label if r.label is not None else NO_LABEL}"
        lines.append(line)
    return "\n".join(lines)
