"""Sharded Lucene impact indexes searched as one: one searcher per shard in one JVM, top-k merged exactly.

An impact score depends on the document alone, so the union of the shards' top k under (score desc, docid
asc) cut at k is the single index's top k; BM25 is refused because its idf and average length are the
shard's (docs/distributed.md, "Sharded Lucene indexes searched as one").
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from .._errors import UsageError
from ..formats.index_meta import read_index_meta
from ..formats.index_group import (BM25_REFUSAL, GROUP_BACKEND, check_disjoint, check_distinct, common_vectors_meta,
                                   make_group, shard_dirs)
from .base import Hit, QuantizedQuery, SparseSearcher, check_k_threads


def merge_topk(per_shard: Sequence[Sequence[Hit]], k: int) -> list[Hit]:
    """The k best hits of the union under (score desc, docid asc): exact if each list is its shard's top k."""
    import heapq

    return heapq.nsmallest(k, (h for hits in per_shard for h in hits), key=lambda h: (-h[1], h[0]))


class LuceneGroupSearcher(SparseSearcher):
    """Search every shard of a Lucene group and merge each query's hits exactly.

    Opened from a group directory (:func:`open_searcher`, backend ``lucene-group``) or from a list of impact
    indexes with :meth:`from_indexes` (``search --index A B C``).
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
            # shards holding the same document would return it twice (their docid tables tell)
            check_disjoint([s._docids for s in self.shards], [str(s) for s in (meta.get("shards") or shards)])
        except BaseException:
            self.close()
            raise
        self.num_docs = sum(s.num_docs for s in self.shards)

    @classmethod
    def from_indexes(cls, indexes: Sequence[str | os.PathLike]) -> "LuceneGroupSearcher":
        if not indexes:
            raise UsageError("no index given")
        names = [str(i) for i in indexes]
        check_distinct(indexes, names)
        metas = [read_index_meta(i) for i in indexes]
        meta = {"backend": GROUP_BACKEND, "shards": names, "vectors": common_vectors_meta(metas, names)}
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
