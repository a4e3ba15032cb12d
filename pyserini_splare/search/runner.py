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
    # two-step search (search/two_step.py): rescore the first stage's top `rescore` with the full vectors
    rescore: int | None = None
    # prune the queries (formats.sparse.parse_pruning); with `rescore`, only the first stage's
    prune_queries: str | None = None
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
    if job.topk > 0 and job.prune_queries:
        raise UsageError("give --topk K or --prune-queries topk:K, not both")
    if job.rescore is None and job.prune_queries:  # one stage: its queries pruned (with --rescore the searcher prunes)
        from .queries import prune_queries

        return prune_queries(vecs, *_query_pruning(job.prune_queries))
    return keep_topk(vecs, job.topk) if job.topk > 0 else vecs


def _query_pruning(spec: str) -> tuple[int, float | None]:
    from ..formats.sparse import parse_pruning

    try:
        return parse_pruning(spec)
    except ValueError as e:
        raise UsageError(f"--prune-queries: {e}") from None


def open_job_searcher(job: SearchJob):
    """The job's searcher: the index's own, or, with ``job.rescore``, a two-step searcher around it."""
    from .registry import open_searcher

    if job.rescore is not None and (isinstance(job.rescore, bool) or job.rescore <= 0):
        raise UsageError(f"--rescore must be a positive number of candidates, got {job.rescore!r}")
    pruning = _query_pruning(job.prune_queries) if job.prune_queries else (0, None)
    try:
        searcher = open_searcher(job.index, **job.options)
    except (TypeError, ValueError) as e:  # an invalid option value for this backend
        meta = read_index_meta(job.index)
        raise UsageError(f"bad searcher options for a {meta['backend']} index: {e}") from None
    if job.rescore is None:
        return searcher
    from .two_step import TwoStepSearcher

    try:
        return TwoStepSearcher(searcher, job.rescore, topk=pruning[0], mass=pruning[1])
    except BaseException:
        searcher.close()
        raise


def search_run(job: SearchJob) -> int:
    """Search ``job.index`` with every query and write ``job.output``; returns the number of lines written."""
    from ..formats.runs import write_run

    meta = read_index_meta(job.index)
    backend = get_backend(meta["backend"])
    out_dir = Path(job.output).parent if job.output else Path(".")  # no output: --calibration-curve
    if str(out_dir) and not out_dir.is_dir():
        raise UsageError(f"output directory {out_dir} does not exist")
    if job.java_heap and backend.needs_jvm:
        from .._java import start_jvm

        start_jvm(job.java_heap)
    for flag, given in (("--rescore", job.rescore is not None), ("--prune-queries", bool(job.prune_queries))):
        if given and backend.query_kind != "sparse":
            raise UsageError(f"{flag} needs a sparse index (lucene, seismic, exact), not {backend.name}")
    if job.rescore is not None and job.topk > 0:  # the two-step searcher prunes the first stage's queries
        raise UsageError("with --rescore, prune the first stage's queries with --prune-queries topk:K "
                         "(--topk would prune the rescoring queries too)")
    searcher = open_job_searcher(job)
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
