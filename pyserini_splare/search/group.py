"""Sharded Lucene impact indexes searched as one: build one index per shard in parallel, merge top-k exactly.

A corpus encoded in shards (``encode --shard-id i --shard-num n``, or parts of a Ray run split into
shard directories) can be indexed shard by shard -- on several cores or machines at once -- and the
shard indexes searched together:

* :func:`build_lucene_group` builds ``GROUP/shard-00000 ...`` (one Lucene impact index per input
  vectors directory, each in its own process: every process runs its own JVM) and writes the
  group's metadata (backend ``lucene-group``, the shard folders, the shards' common vectors metadata).
* :func:`make_group` writes group metadata over impact indexes built elsewhere (no copy).
* :class:`LuceneGroupSearcher` opens one :class:`~pyserini_splare.search.lucene.ImpactSearcher` per
  shard in one JVM and merges.

Why the merge is exact: an impact score is the dot product of the query's and the document's
integer weights -- it depends on the document alone, not on the rest of its shard -- so a document
scores the same in its shard as in one index over everything. Each shard returns its top k under
the total order (score desc, docid asc) (Anserini breaks ties at the cut-off by the id field), so
every document of the global top k is in its own shard's top k; the union sorted by the same
order and cut at k is the single index's top k, ties included.

Why BM25 is refused: a BM25 score uses the term's idf and the average document length, which are
statistics *of the shard*; the same document scores differently in different shards, so a merge
of per-shard top-k is neither the single index's ranking nor its scores. Build one BM25 index over
the whole text instead.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from .._errors import UsageError
from .._outputs import atomic_dir
from ..formats.index_meta import read_index_meta, write_index_meta
from ._base import Hit, QuantizedQuery, SparseSearcher, check_k_threads

GROUP_BACKEND = "lucene-group"
BM25_REFUSAL = ("BM25 indexes cannot be searched as a group: a BM25 score depends on its shard's idf and average "
                "document length, so scores from different shards are not comparable and a merged top-k would "
                "differ from one index's; build one BM25 index over the whole collection")


def _shard_name(i: int) -> str:
    return f"shard-{i:05d}"


def _common_vectors_meta(metas: Sequence[Mapping[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    """The shards' vectors metadata, which must agree on what makes scores comparable."""
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


def _build_one(shard_input: str, out: str, threads: int, options: dict) -> dict:
    from ..index.lucene import build

    return build([shard_input], out, threads=threads, **options)


def build_lucene_group(inputs: Sequence[str | os.PathLike], index: str | os.PathLike, *, threads: int = 1,
                       overwrite: bool = False, processes: int | None = None, **options) -> dict[str, Any]:
    """Build one Lucene impact index per vectors directory in ``inputs`` under ``index``, in parallel.

    ``processes`` (default: ``min(len(inputs), threads)``) shard builds run at once, each with
    ``threads // processes`` Anserini threads; every process starts its own JVM. ``options`` are
    the lucene backend's build options. Returns the group metadata.
    """
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing

    inputs = [os.fspath(p) for p in inputs]
    if not inputs:
        raise UsageError("no input directory given")
    procs = max(1, min(len(inputs), processes or threads))
    per = max(1, threads // procs)
    t0 = time.time()
    with atomic_dir(index, overwrite=overwrite) as tmp:
        outs = [str(tmp / _shard_name(i)) for i in range(len(inputs))]
        if procs == 1:
            metas = [_build_one(i, o, per, options) for i, o in zip(inputs, outs)]
        else:
            # spawn, not fork: a forked child would inherit this process's JVM state (if any) unusable.
            with ProcessPoolExecutor(procs, mp_context=multiprocessing.get_context("spawn")) as pool:
                metas = list(pool.map(_build_one, inputs, outs, [per] * len(inputs), [options] * len(inputs)))
        meta = _write_group_meta(tmp, [_shard_name(i) for i in range(len(inputs))], metas,
                                 build={"processes": procs, "threads_per_process": per,
                                        "seconds": round(time.time() - t0, 2)})
    print(f"built {len(inputs)} shard indexes in {time.time() - t0:.1f} s ({procs} at a time)", file=sys.stderr)
    return meta


def _write_group_meta(group: Path, shards: list[str], metas: list[dict], **extra) -> dict[str, Any]:
    vectors = _common_vectors_meta(metas, shards)
    docs = [(m.get("build") or {}).get("documents") for m in metas]
    return write_index_meta(group, GROUP_BACKEND, shards=shards, vectors=vectors,
                            documents=sum(docs) if all(d is not None for d in docs) else None, **extra)


def make_group(shard_indexes: Sequence[str | os.PathLike], group: str | os.PathLike, *,
               overwrite: bool = False) -> dict[str, Any]:
    """Write a group directory over existing Lucene impact indexes (referenced by absolute path)."""
    shards = [str(Path(s).resolve()) for s in shard_indexes]
    if not shards:
        raise UsageError("no shard index given")
    metas = [read_index_meta(s) for s in shards]
    with atomic_dir(group, overwrite=overwrite) as tmp:
        meta = _write_group_meta(tmp, shards, metas)
    return meta


def shard_dirs(group: str | os.PathLike, meta: Mapping[str, Any] | None = None) -> list[Path]:
    """The shard index folders of a group (relative names are inside the group folder)."""
    meta = meta if meta is not None else read_index_meta(group)
    return [Path(group) / s if not os.path.isabs(s) else Path(s) for s in meta["shards"]]


def merge_topk(per_shard: Sequence[Sequence[Hit]], k: int) -> list[Hit]:
    """The k best hits of the union under (score desc, docid asc): exact if each list is its shard's top k."""
    import heapq

    return heapq.nsmallest(k, (h for hits in per_shard for h in hits), key=lambda h: (-h[1], h[0]))


class LuceneGroupSearcher(SparseSearcher):
    """Search every shard of a Lucene group and merge each query's hits exactly (see the module doc).

    Open it from a group directory (what :func:`open_searcher` does for backend ``lucene-group``) or
    from a list of impact indexes with :meth:`from_indexes` (``search --index A B C``).
    """

    backend = GROUP_BACKEND

    def __init__(self, index_dir, meta=None, *, _shards: Sequence[Path] | None = None):
        meta = dict(meta) if meta is not None else read_index_meta(index_dir)
        if meta.get("backend") == "bm25":
            raise UsageError(f"{index_dir}: {BM25_REFUSAL}")
        super().__init__(index_dir, meta)
        from .lucene import ImpactSearcher

        shards = list(_shards) if _shards is not None else shard_dirs(index_dir, meta)
        self.shards = []
        try:
            for s in shards:
                self.shards.append(ImpactSearcher(s))
        except BaseException:
            self.close()
            raise
        self.num_docs = sum(s.num_docs for s in self.shards)

    @classmethod
    def from_indexes(cls, indexes: Sequence[str | os.PathLike]) -> "LuceneGroupSearcher":
        if not indexes:
            raise UsageError("no index given")
        metas = [read_index_meta(i) for i in indexes]
        names = [str(i) for i in indexes]
        meta = {"backend": GROUP_BACKEND, "shards": names, "vectors": _common_vectors_meta(metas, names)}
        return cls(",".join(names), meta, _shards=[Path(i) for i in indexes])

    def batch_search(self, queries: Mapping[str, Mapping[str, float]], k: int = 1000,
                     threads: int = 1) -> dict[str, list[Hit]]:
        check_k_threads(k, threads)
        # Quantize once with the group's scale (every shard has the same), then pass the integer
        # queries to each shard as they are.
        prepared = {qid: QuantizedQuery(self.prepare(qid, v)) for qid, v in queries.items()}
        per_shard = [s.batch_search(prepared, k, threads) for s in self.shards]
        return {qid: merge_topk([r.get(qid, []) for r in per_shard], k) for qid in prepared}

    def close(self) -> None:
        for s in getattr(self, "shards", []):
            s.close()
        self.shards = []



@contextlib.contextmanager
def index_or_group(indexes: Sequence[str | os.PathLike]) -> Iterator[str]:
    """``search --index A [B ...]``: one index as it is; several Lucene impact indexes as a group folder
    made for the search (in a temporary directory, removed afterwards)."""
    if len(indexes) == 1:
        yield os.fspath(indexes[0])
        return
    with tempfile.TemporaryDirectory(prefix="pyserini_splare.group.") as tmp:
        make_group(indexes, Path(tmp) / "group")
        yield str(Path(tmp) / "group")
