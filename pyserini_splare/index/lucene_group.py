"""Build a group of Lucene impact indexes, one per shard of a collection, searched as one index.

:func:`build_lucene_group` builds one impact index per input (each in its own process and JVM). The group
folder's format -- its metadata, :func:`~pyserini_splare.formats.index_group.make_group` over indexes built
elsewhere, and the checks that shards are distinct -- is :mod:`pyserini_splare.formats.index_group`'s.
Why impact shards merge exactly: docs/distributed.md.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Sequence

from .._errors import UsageError
from .._outputs import atomic_dir
from ..formats.index_group import GROUP_BACKEND, check_disjoint, shard_name, write_group_meta


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
        outs = [str(tmp / shard_name(i)) for i in range(len(inputs))]
        if procs == 1:
            metas = [_build_one(i, out, per, o) for i, out in zip(inputs, outs)]
        else:
            # spawn, not fork: a forked child would inherit this process's JVM state (if any) unusable.
            with ProcessPoolExecutor(procs, mp_context=multiprocessing.get_context("spawn")) as pool:
                metas = list(pool.map(_build_one, inputs, outs, [per] * len(inputs), [o] * len(inputs)))
        check_disjoint([read_docids(out, required=False) for out in outs], inputs)
        meta = write_group_meta(tmp, [shard_name(i) for i in range(len(inputs))], metas, names=inputs,
                                build={"processes": procs, "threads_per_process": per,
                                       "seconds": round(time.time() - t0, 2)})
    print(f"built {len(inputs)} shard indexes in {time.time() - t0:.1f} s ({procs} at a time)", file=sys.stderr)
    return meta
