"""A group of Lucene impact indexes (backend ``lucene-group``): one folder whose index metadata names its
shard indexes, searched as one index.

The group's ``pyserini_splare_index.json`` lists ``shards`` (folders inside the group, or absolute paths
to indexes built elsewhere) and the vectors metadata they share. Its one writer (:func:`write_group_meta`,
:func:`make_group`), reader (:func:`shard_dirs`) and validators (the shards must be Lucene impact indexes
of one feature space and scale, each given once, holding no document twice) live here, below both stages:
``index --backend lucene-group`` builds groups, ``search`` opens them and makes one for ``--index A B C``.
Why impact shards merge exactly and BM25 ones do not: docs/distributed.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from .._errors import UsageError
from .._outputs import atomic_dir
from .index_meta import read_index_meta, write_index_meta

GROUP_BACKEND = "lucene-group"
BM25_REFUSAL = ("BM25 indexes cannot be searched as a group: a BM25 score depends on its shard's idf and average "
                "document length, so scores from different shards are not comparable and a merged top-k would "
                "differ from one index's; build one BM25 index over the whole collection")


def shard_name(i: int) -> str:
    """The folder of shard ``i`` inside a group built by ``index --backend lucene-group``."""
    return f"shard-{i:05d}"


def common_vectors_meta(metas: Sequence[Mapping[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    """The shards' vectors metadata, which must agree on what makes scores comparable (``names``: how to
    call each shard in an error -- the folders the user gave)."""
    for m, name in zip(metas, names):
        if m.get("backend") == "bm25":
            raise UsageError(f"{name}: {BM25_REFUSAL}")
        if m.get("backend") != "lucene":
            raise UsageError(f"{name}: a {m.get('backend')} index; a Lucene group holds Lucene impact indexes")
    first = metas[0]["vectors"]
    for key in ("feature_space_fingerprint", "feature_space", "quant_scale"):
        for m, name in zip(metas[1:], names[1:]):
            if m["vectors"].get(key) != first.get(key):
                raise UsageError(f"{name} and {names[0]} differ in {key}: their scores are not comparable "
                                 f"(encoded with different models or quantization scales?)")
    common = dict(first)
    common.pop("stats", None)  # per-shard; the group's totals are in the group metadata
    return common


def check_distinct(folders: Sequence[str | os.PathLike], names: Sequence[str] | None = None) -> None:
    """Refuse the same folder twice (by real path: a link or ``a/../a`` is the same folder)."""
    names = [str(n) for n in (names or folders)]
    seen: dict[str, str] = {}
    for f, name in zip(folders, names):
        real = os.path.realpath(f)
        if real in seen:
            raise UsageError(f"{name} is given twice (as {seen[real]} and {name}): each shard must be searched once")
        seen[real] = name


def check_disjoint(tables: Sequence[Any], names: Sequence[str]) -> None:
    """Refuse shards that hold the same document id (their docid tables, :mod:`pyserini_splare.formats.docids`;
    None for a shard built without one is skipped)."""
    import numpy as np

    known = [(t, n) for t, n in zip(tables, names) if t is not None]
    if len(known) < 2:
        return
    ids = np.concatenate([t for t, _ in known])
    uniq, counts = np.unique(ids, return_counts=True)
    if len(uniq) == len(ids):
        return
    dup = str(uniq[counts > 1][0])
    holders = [n for t, n in known if dup in set(t.tolist())]
    raise UsageError(f"document {dup!r} is in {' and '.join(holders[:2])} ({int((counts > 1).sum()):,} ids are in "
                     "more than one shard): the shards overlap, and searching them as one would return documents twice")


def write_group_meta(group: Path, shards: list[str], metas: list[dict], names: Sequence[str],
                     **extra) -> dict[str, Any]:
    """Write the group's index metadata over ``shards`` (their own metadata ``metas``, checked to agree)."""
    vectors = common_vectors_meta(metas, names)
    docs = [(m.get("build") or {}).get("documents") for m in metas]
    return write_index_meta(group, GROUP_BACKEND, shards=shards, vectors=vectors,
                            documents=sum(docs) if all(d is not None for d in docs) else None, **extra)


def make_group(shard_indexes: Sequence[str | os.PathLike], group: str | os.PathLike, *,
               overwrite: bool = False) -> dict[str, Any]:
    """Write a group directory over existing Lucene impact indexes (referenced by absolute path)."""
    from .docids import read_docids

    if not shard_indexes:
        raise UsageError("no shard index given")
    names = [str(s) for s in shard_indexes]
    check_distinct(shard_indexes, names)
    metas = [read_index_meta(s) for s in shard_indexes]
    common_vectors_meta(metas, names)  # before reading any table: a BM25 index has none
    check_disjoint([read_docids(s, required=False) for s in shard_indexes], names)
    shards = [str(Path(s).resolve()) for s in shard_indexes]
    with atomic_dir(group, overwrite=overwrite) as tmp:
        meta = write_group_meta(tmp, shards, metas, names)
    return meta


def shard_dirs(group: str | os.PathLike, meta: Mapping[str, Any] | None = None) -> list[Path]:
    """The shard index folders of a group (relative names are inside the group folder)."""
    meta = meta if meta is not None else read_index_meta(group)
    return [Path(group) / s if not os.path.isabs(s) else Path(s) for s in meta["shards"]]
