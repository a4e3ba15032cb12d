"""Index metadata: every index directory carries ``pyserini_splare_index.json``.

It records the backend, the vectors metadata the index was built from (merged over shards; ``"foreign":
true`` for a collection this toolkit did not write), the sources and the build settings, so ``search``
picks the searcher itself and refuses queries from another feature space.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .._errors import UsageError
from .._outputs import atomic_file

INDEX_META_FILE = "pyserini_splare_index.json"
INDEX_FORMAT = "pyserini_splare.index/1"


def write_index_meta(index_dir: str | os.PathLike, backend: str, **fields: Any) -> dict[str, Any]:
    meta = {"format": INDEX_FORMAT, "backend": backend, **fields}
    with atomic_file(Path(index_dir) / INDEX_META_FILE) as f:
        json.dump(meta, f, indent=1)
    return meta


def read_index_meta(index_dir: str | os.PathLike) -> dict[str, Any]:
    d = Path(index_dir)
    if not d.exists():
        raise UsageError(f"index {d} does not exist")
    if not d.is_dir():
        raise UsageError(f"index {d} is not a directory")
    p = d / INDEX_META_FILE
    if not p.is_file():
        hint = " (it looks like a vectors directory: build an index from it with `python -m pyserini_splare.index`)" \
            if (d / "meta.json").is_file() else ""
        raise UsageError(f"{d} is not an index built by pyserini_splare: no {INDEX_META_FILE}{hint}")
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"{p}: malformed index metadata ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != INDEX_FORMAT or "backend" not in meta:
        raise UsageError(f"{p}: not pyserini_splare index metadata")
    return meta
