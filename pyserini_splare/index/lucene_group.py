"""A group of Lucene impact indexes, one per shard of a collection, searched as one index.

:func:`build_lucene_group` builds one impact index per input (each in its own process and JVM);
:func:`make_group` records a group over indexes built elsewhere. Shards must be distinct (a document twice
would crowd others out of the top k). Why impact shards merge exactly: docs/distributed.md.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from .._errors import UsageError
from .._outputs import atomic_dir
from ..formats.index_meta import read_index_meta, write_index_meta

GROUP_BACKEND = "lucene-group"
BM25_REFUSAL = ("BM25 indexes cannot be searched as a group: a BM25 score depends on its shard's idf and average "
                "document length, so scores from different shards are not comparable and a merged top-k would "
                "differ from one index's; build one BM25 index over the whole collection")


def _shard_name(i: int) -> str:
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


def _build_one(shard_input: str, out: str, threads: int, options: dict) -> dict:
    from .lucene_impact import build

    return build([shard_input], out, threads=threads, **options)


def build_lucene_group(inputs: Sequence[str | os.PathLike], index: str | os.PathLike, *, threads: int = 1,
                       overwrite: bool = False, **options) -> dict[str, Any]:
    """Build one Lucene impact index per vectors directory in ``inputs`` under ``index``, in parallel.

    ``options``: :class:`pyserini_splare.backends.LuceneGroupBuild` (``processes`` shard builds at once, each with
    ``threads // processes`` indexing threads and its own JVM). Returns the group metadata.
    """
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing

    from ..backends import get_backend
    from ..formats.docids import read_docids
    from ..formats.vectors_reader import open_collection

    o = get_backend(GROUP_BACKEND).check_build_options(options)
    processes = o.pop("processes")
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    inputs = [os.fspath(p) for p in inputs]
    if not inputs:
        raise UsageError("no input directory given")
    # Before any build: the same folder twice, or shards that differ in feature space or scale (named
    # by the folders given; open_collection reads only their metadata).
    open_collection(inputs, kind="sparse", quant_scale=o["quant_scale"])
    procs = max(1, min(len(inputs), processes or threads))
    per = max(1, threads // procs)
    t0 = time.time()
    with atomic_dir(index, overwrite=overwrite) as tmp:
        outs = [str(tmp / _shard_name(i)) for i in range(len(inputs))]
        if procs == 1:
            metas = [_build_one(i, out, per, o) for i, out in zip(inputs, outs)]
        else:
            # spawn, not fork: a forked child would inherit this process's JVM state (if any) unusable.
            with ProcessPoolExecutor(procs, mp_context=multiprocessing.get_context("spawn")) as pool:
                metas = list(pool.map(_build_one, inputs, outs, [per] * len(inputs), [o] * len(inputs)))
        check_disjoint([read_docids(out, required=False) for out in outs], inputs)
        meta = _write_group_meta(tmp, [_shard_name(i) for i in range(len(inputs))], metas, names=inputs,
                                 build={"processes": procs, "threads_per_process": per,
                                        "seconds": round(time.time() - t0, 2)})
    print(f"built {len(inputs)} shard indexes in {time.time() - t0:.1f} s ({procs} at a time)", file=sys.stderr)
    return meta


def _write_group_meta(group: Path, shards: list[str], metas: list[dict], names: Sequence[str],
                      **extra) -> dict[str, Any]:
    vectors = common_vectors_meta(metas, names)
    docs = [(m.get("build") or {}).get("documents") for m in metas]
    return write_index_meta(group, GROUP_BACKEND, shards=shards, vectors=vectors,
                            documents=sum(docs) if all(d is not None for d in docs) else None, **extra)


def make_group(shard_indexes: Sequence[str | os.PathLike], group: str | os.PathLike, *,
               overwrite: bool = False) -> dict[str, Any]:
    """Write a group directory over existing Lucene impact indexes (referenced by absolute path)."""
    from ..formats.docids import read_docids

    if not shard_indexes:
        raise UsageError("no shard index given")
    names = [str(s) for s in shard_indexes]
    check_distinct(shard_indexes, names)
    metas = [read_index_meta(s) for s in shard_indexes]
    common_vectors_meta(metas, names)  # before reading any table: a BM25 index has none
    check_disjoint([read_docids(s, required=False) for s in shard_indexes], names)
    shards = [str(Path(s).resolve()) for s in shard_indexes]
    with atomic_dir(group, overwrite=overwrite) as tmp:
        meta = _write_group_meta(tmp, shards, metas, names)
    return meta


def shard_dirs(group: str | os.PathLike, meta: Mapping[str, Any] | None = None) -> list[Path]:
    """The shard index folders of a group (relative names are inside the group folder)."""
    meta = meta if meta is not None else read_index_meta(group)
    return [Path(group) / s if not os.path.isabs(s) else Path(s) for s in meta["shards"]]
