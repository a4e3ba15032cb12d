"""Search every topic of a run: open the index's searcher, build its queries, search in batches, write the run.

What ``python -m pyserini_splare.search`` does once its arguments are parsed; the kind of query
(text, dense, sparse) comes from the index's backend in :mod:`pyserini_splare.backends`.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .._console import progress
from .._errors import UsageError
from ..formats.index_meta import read_index_meta
from ..backends import get_backend


@dataclass
class SearchJob:
    """One search run's settings (the search CLI's flags)."""

    index: str
    output: str
    topics: Mapping[str, str] | None = None
    query_vectors: str | None = None
    query_vectors_quantized: bool = False
    encoder: str | None = None
    hits: int = 1000
    threads: int = 1
    batch_size: int = 64
    run_tag: str | None = None
    topk: int = 0
    device: str = "cpu"
    max_length: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    java_heap: str | None = None
    # --target-recall & co (search/calibrate.py); None: use a calibration recorded in the index, if any
    calibration: Any = None


def _queries(job: SearchJob, backend, meta) -> dict[str, Any]:
    from .queries import encode_topics, keep_topk, read_query_file

    if job.query_vectors and job.encoder:
        raise UsageError("give either --query-vectors or --encoder, not both")
    if job.query_vectors_quantized and not job.query_vectors:
        raise UsageError("--query-vectors-quantized describes a --query-vectors file: pass one")
    if backend.query_kind == "text":
        if job.topics is None:
            raise UsageError(f"a {backend.name} index is searched with text: pass --topics")
        if job.query_vectors:
            raise UsageError(f"--query-vectors cannot search a {backend.name} index")
        if job.encoder:  # ignoring it would hand the user BM25 results they take for the encoder's
            raise UsageError(f"--encoder cannot search a {backend.name} index, which is searched with the topics' "
                             f"text: search an index built from the encoder's vectors (lucene, seismic or exact)")
        return dict(job.topics)
    if backend.query_kind == "dense":
        if job.topics is None:
            raise UsageError("a dense index is searched with encoded topics: pass --topics and --encoder")
        if not job.encoder:
            raise UsageError("a dense index needs --encoder (e.g. qwen3-embed:/path/to/Qwen3-Embedding)")
        return encode_topics(job.encoder, job.topics, backend, meta, device=job.device, max_length=job.max_length,
                             batch_size=job.batch_size)
    if job.query_vectors:
        vecs = read_query_file(job.query_vectors, job.topics, quantized=job.query_vectors_quantized)
    elif job.encoder:
        if job.topics is None:
            raise UsageError("--encoder needs --topics to encode")
        vecs = encode_topics(job.encoder, job.topics, backend, meta, device=job.device, max_length=job.max_length,
                             batch_size=job.batch_size)
    else:
        raise UsageError(f"a {backend.name} index is searched with query vectors: pass --query-vectors or --encoder")
    return keep_topk(vecs, job.topk) if job.topk > 0 else vecs


def search_run(job: SearchJob) -> int:
    """Search ``job.index`` with every query and write ``job.output``; returns the number of lines written."""
    from ..formats.runs import write_run
    from .registry import open_searcher

    meta = read_index_meta(job.index)
    backend = get_backend(meta["backend"])
    out_dir = Path(job.output).parent if job.output else Path(".")  # no output: --calibration-curve
    if str(out_dir) and not out_dir.is_dir():
        raise UsageError(f"output directory {out_dir} does not exist")
    if job.java_heap and backend.needs_jvm:
        from .._java import start_jvm

        start_jvm(job.java_heap)
    try:
        searcher = open_searcher(job.index, **job.options)
    except (TypeError, ValueError) as e:  # an invalid option value for this backend
        raise UsageError(f"bad searcher options for a {backend.name} index: {e}") from None
    with searcher:
        queries = _queries(job, backend, searcher.meta)
        from .calibrate import CalibrationRequest, plan_calibration

        req = job.calibration or CalibrationRequest(explicit_options=tuple(job.options))
        plan = plan_calibration(searcher, queries, req, hits=job.hits, threads=job.threads)
        if req.curve:
            return 0
        tag = job.run_tag or Path(job.index.rstrip("/")).name
        qids = list(queries)
        results = {}
        t0, c0 = time.perf_counter(), time.process_time()
        with progress(total=len(qids), desc=f"search {backend.name}", unit="q") as bar:
            for i in range(0, len(qids), job.batch_size):
                batch = {q: queries[q] for q in qids[i:i + job.batch_size]}
                results.update(searcher.batch_search(batch, k=job.hits, threads=job.threads))
                bar.update(len(batch))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if job.calibration is not None and job.calibration.target_recall is not None:
            print(f"searched {len(qids)} queries in {wall:.2f} s: {len(qids) / max(wall, 1e-9):.1f} q/s, "
                  f"{1000 * cpu / max(1, len(qids)):.2f} CPU ms/query ({job.threads} thread(s), k={job.hits})",
                  file=sys.stderr)
        if plan is not None:
            plan.finish(results)
    n = write_run(job.output, {q: dict(hits) for q, hits in results.items()}, tag, order=qids)
    print(f"wrote {n} lines for {len(qids)} queries to {job.output}", file=sys.stderr)
    return n
