"""An index's recorded calibrations: ``pyserini_splare_calibration.json`` beside ``pyserini_splare_index.json``.

What ``search --target-recall`` records and reuses: docs/search.md, "Recall you can trust". This module is the
file's one writer, reader and validator; :mod:`pyserini_splare.search.calibrate` decides what goes in. Removing
the file only forgets the calibration.

Layout (format ``pyserini_splare.calibration/1``)::

    {"format": "pyserini_splare.calibration/1", "backend": "seismic", "documents": 50000,
     "entries": [{"target_recall": 0.99, "recall_at": 1000,
                  "options": {"query_cut": 30, "heap_factor": 0.8, "n_knn": 0},
                  "calibration": {"queries": 200, "seed": 0, "recall": 0.9931, "ms_per_query": 4.1,
                                  "cpu_ms_per_query": 4.0, "query_ids_sha256": "..."},
                  "held_out": {"queries": 200, "recall": 0.9928} | null,
                  "reference": {"index": "/abs/path", "backend": "exact"},
                  "created": "2026-12-05T02:00:00+00:00"}, ...]}

One entry per (target_recall, recall_at); a new calibration of the same pair replaces the old one.
``documents`` ties the record to the index it describes: a record whose count differs from the index's
is refused (an index rebuilt in place by hand, or a record copied from another index).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from .._errors import UsageError
from .._outputs import atomic_file

CALIBRATION_FILE = "pyserini_splare_calibration.json"
CALIBRATION_FORMAT = "pyserini_splare.calibration/1"


def _bad(where: str, what: str) -> UsageError:
    return UsageError(f"{where}: {what} (remove the file to forget the calibration)")


def _is_number(x: Any) -> bool:
    return not isinstance(x, bool) and isinstance(x, (int, float)) and math.isfinite(x)


def check_entry(entry: Any, where: str) -> dict[str, Any]:
    """One entry, validated (its fields as documented above); returns it."""
    if not isinstance(entry, dict):
        raise _bad(where, "an entry is not a JSON object")
    r, k = entry.get("target_recall"), entry.get("recall_at")
    if not _is_number(r) or not 0 < r <= 1:
        raise _bad(where, f"target_recall must be in (0, 1], got {r!r}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise _bad(where, f"recall_at must be a positive integer, got {k!r}")
    opts = entry.get("options")
    if not isinstance(opts, dict) or not opts or not all(_is_number(v) for v in opts.values()):
        raise _bad(where, f"options must be an object of numbers, got {opts!r}")
    cal = entry.get("calibration")
    if not isinstance(cal, dict) or not all(_is_number(cal.get(x)) for x in ("queries", "recall", "ms_per_query")):
        raise _bad(where, "calibration must give queries, recall and ms_per_query")
    held = entry.get("held_out")
    if held is not None and (not isinstance(held, dict) or not all(_is_number(held.get(x)) for x in ("queries", "recall"))):
        raise _bad(where, "held_out must be null or give queries and recall")
    return entry


def read_calibration(index_dir: str | os.PathLike, *, documents: int | None = None) -> list[dict[str, Any]]:
    """The recorded entries of ``index_dir`` (none: ``[]``). A malformed file, or one recorded for an
    index of another size than ``documents``, is a UsageError."""
    p = Path(index_dir) / CALIBRATION_FILE
    if not p.is_file():
        return []
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise _bad(str(p), f"malformed JSON ({e})") from None
    if not isinstance(obj, dict) or obj.get("format") != CALIBRATION_FORMAT or not isinstance(obj.get("entries"), list):
        raise _bad(str(p), f"not a {CALIBRATION_FORMAT} file")
    if documents is not None and obj.get("documents") != documents:
        raise _bad(str(p), f"recorded for an index of {obj.get('documents')} documents, this one has {documents}")
    return [check_entry(e, str(p)) for e in obj["entries"]]


def find_entry(entries: list[dict[str, Any]], target_recall: float, recall_at: int) -> dict[str, Any] | None:
    """The entry recorded for this (target, k), if any."""
    for e in entries:
        if math.isclose(e["target_recall"], target_recall, abs_tol=1e-12) and e["recall_at"] == recall_at:
            return e
    return None


def write_calibration(index_dir: str | os.PathLike, backend: str, documents: int, entry: dict[str, Any]) -> Path:
    """Add ``entry`` to the index's record (replacing one of the same target and k), atomically."""
    check_entry(entry, "new calibration entry")
    entries = [e for e in read_calibration(index_dir, documents=documents)
               if find_entry([e], entry["target_recall"], entry["recall_at"]) is None]
    entries.append(entry)
    p = Path(index_dir) / CALIBRATION_FILE
    with atomic_file(p) as f:
        json.dump({"format": CALIBRATION_FORMAT, "backend": backend, "documents": int(documents), "entries": entries},
                  f, indent=1)
    return p
