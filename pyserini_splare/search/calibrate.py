"""Calibrate an approximate index's query-time settings for a target recall, and reuse the result.

What ``search --target-recall R --recall-at K`` (and ``index --calibrate``) does, and why: docs/search.md,
"Recall you can trust". In short: a fixed-seed sample of the topics is searched on a rank-safe reference of
the same vectors for its exact top-K; the backend's calibrated options (a ``grid`` in
:mod:`pyserini_splare.backends`) are walked from the fastest setting along the recall/speed frontier (for
each query_cut, only the heap_factors faster than the one that passed at the previous query_cut; stop at
the first query_cut whose fastest heap_factor passes); the cheapest setting in CPU ms/query reaching R is
recorded in the index folder (:mod:`pyserini_splare.formats.calibration`) and used; the queries not in the
sample are the held-out set. A plain search keeps the registry's defaults, so it answers what ``serve``
answers. Seismic's scores are exact integer dot products: a hit the reference lacks although it scores
above the reference's K-th score means the indexes hold different documents, an error, not a low recall.
"""

from __future__ import annotations

import datetime
import hashlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .._errors import UsageError
from ..backends import BACKENDS, get_backend
from ..formats.index_meta import INDEX_META_FILE, read_index_meta

# The calibration sample when --calibration-queries is not given: this many, at most half the topics.
DEFAULT_SAMPLE = 200
# Timing one setting: repeat the sample's search until this many seconds (at most MAX_REPEATS times).
MIN_TIMED_S = 0.3
MAX_REPEATS = 5


@dataclass
class CalibrationRequest:
    """The search CLI's calibration flags."""

    target_recall: float | None = None
    recall_at: int | None = None  # None: --hits
    queries: float | None = None  # sample size (>= 1) or fraction (< 1); None: DEFAULT_SAMPLE
    seed: int = 0
    reference: str | None = None
    recalibrate: bool = False
    curve: bool = False
    explicit_options: tuple[str, ...] = ()  # searcher options the user gave


@dataclass
class Point:
    options: dict[str, Any]
    recall: float
    ms: float
    cpu_ms: float

    def label(self) -> str:
        return " ".join(f"{k}={v:g}" for k, v in self.options.items())


def _say(line: str) -> None:
    print(line, file=sys.stderr)


# -------------------------------------------------------------------------------------------------
# Pieces (tested one by one)
# -------------------------------------------------------------------------------------------------


def check_target(target: float) -> float:
    if not 0 < target <= 1:
        raise UsageError(f"--target-recall must be in (0, 1], got {target:g}")
    return target


def sample_size(n_topics: int, queries: float | None) -> int:
    """How many of ``n_topics`` queries calibrate (the rest are held out): at least 1, and at least one
    held out."""
    if queries is None:
        n = min(DEFAULT_SAMPLE, n_topics // 2)
    elif 0 < queries < 1:
        n = int(round(queries * n_topics))
    elif queries >= 1 and float(queries).is_integer():
        n = int(queries)
    else:
        raise UsageError(f"--calibration-queries must be a count >= 1 or a fraction in (0, 1), got {queries:g}")
    if n < 1:
        raise UsageError(f"{n_topics} topic(s) cannot be split into calibration and held-out queries"
                         if queries is None else
                         f"--calibration-queries {queries:g} of {n_topics} topics is no query: calibrate on at least one")
    if n >= n_topics:
        raise UsageError(f"--calibration-queries {n} leaves no held-out query among the {n_topics} topics "
                         f"(calibrate on fewer, so that recall is reported on queries it did not see)")
    return n


def split_queries(qids: list[str], n: int, seed: int) -> tuple[list[str], list[str]]:
    """``(calibration sample, held out)``: ``n`` ids drawn with ``seed``, both in topic order."""
    chosen = set(np.random.default_rng(seed).permutation(len(qids))[:n].tolist())
    return [q for i, q in enumerate(qids) if i in chosen], [q for i, q in enumerate(qids) if i not in chosen]


def recall_at(got: Mapping[str, list], ref: Mapping[str, list], k: int) -> float:
    """Mean over ``ref``'s queries of |got top-k ∩ ref top-k| / |ref top-k| (a query the reference
    matches nothing for counts 1)."""
    vals = []
    for q, hits in ref.items():
        r = {d for d, _ in hits[:k]}
        vals.append(len({d for d, _ in got.get(q, [])[:k]} & r) / len(r) if r else 1.0)
    return float(np.mean(vals)) if vals else 1.0


def check_same_documents(got: Mapping[str, list], ref: Mapping[str, list], k: int, ref_dir) -> None:
    """Both sides score exact integer dot products: a hit the reference lacks although it scores above
    the reference's k-th score, or scores differently, means the indexes hold different documents."""
    for q, hits in got.items():
        rh = ref.get(q, [])[:k]
        scores = dict(rh)
        kth = rh[-1][1] if len(rh) >= k else 0.0
        for d, s in hits[:k]:
            if d in scores and scores[d] != s:
                raise UsageError(f"reference {ref_dir} does not hold the same vectors: query {q!r}, document {d!r} "
                                 f"scores {scores[d]:g} there and {s:g} in the index")
            if d not in scores and s > kth:
                raise UsageError(f"reference {ref_dir} does not cover the same documents: query {q!r} finds {d!r} "
                                 f"(score {s:g}) in the index, not in the reference's top {k}")


def calibrated_options(backend_name: str) -> dict[str, tuple]:
    return get_backend(backend_name).calibration_grid()


def refuse_uncalibrated(backend_name: str, flag: str = "--target-recall") -> None:
    b = get_backend(backend_name)
    if b.rank_safe:
        raise UsageError(f"{b.name} indexes are rank-safe: their top-k is already exact, there is nothing to calibrate "
                         f"({flag} calibrates approximate backends: "
                         f"{', '.join(x.name for x in _calibratable())})")
    if not b.calibration_grid():
        raise UsageError(f"{flag} calibrates {', '.join(x.name for x in _calibratable())} indexes; "
                         f"{b.name} indexes have no calibrated settings")


def _calibratable():
    return [b for b in BACKENDS.values() if b.calibration_grid()]


# -------------------------------------------------------------------------------------------------
# The reference
# -------------------------------------------------------------------------------------------------


def _documents(meta: Mapping[str, Any]) -> int | None:
    n = (meta.get("build") or {}).get("documents")
    if n is None:
        n = ((meta.get("vectors") or {}).get("stats") or {}).get("documents")
    return None if n is None else int(n)


def check_reference(index_dir, meta: Mapping[str, Any], ref_dir) -> dict[str, Any]:
    """The reference's index metadata, after checking it can stand for ``index_dir``: a rank-safe sparse
    backend over the same feature space, scale and number of documents."""
    ref_meta = read_index_meta(ref_dir)
    b = BACKENDS.get(ref_meta["backend"])
    if b is None or not b.rank_safe or b.query_kind != "sparse":
        raise UsageError(f"--calibration-reference {ref_dir} is a {ref_meta['backend']} index: give a rank-safe "
                         f"index of the same vectors (exact, lucene or lucene-group)")
    mine, theirs = meta.get("vectors") or {}, ref_meta.get("vectors") or {}
    for key in ("feature_space_fingerprint", "quant_scale"):
        if mine.get(key) != theirs.get(key):
            raise UsageError(f"reference {ref_dir} does not cover the same documents: its {key} is "
                             f"{theirs.get(key)!r}, the index's {mine.get(key)!r}")
    n, m = _documents(meta), _documents(ref_meta)
    if n is not None and m is not None and n != m:
        raise UsageError(f"reference {ref_dir} does not cover the same documents: it holds {m} documents, "
                         f"the index {n}")
    return ref_meta


def find_reference(index_dir, meta: Mapping[str, Any]) -> Path:
    """A sibling folder of ``index_dir`` holding a rank-safe index of the same source vectors (exact
    preferred: no JVM, fastest at these sizes)."""
    index_dir = Path(index_dir).resolve()
    source = meta.get("source")
    found = []
    for d in sorted(index_dir.parent.iterdir()) if source is not None else []:
        if d == index_dir or not (d / INDEX_META_FILE).is_file():
            continue
        try:
            m = read_index_meta(d)
        except UsageError:
            continue
        b = BACKENDS.get(m.get("backend"))
        if b is not None and b.rank_safe and m.get("source") == source:
            found.append((b.name != "exact", d))
    if not found:
        raise UsageError(f"no reference to calibrate {index_dir.name} against: pass --calibration-reference DIR, an "
                         f"exact or Lucene index of the same vectors (python -m pyserini_splare.index --backend "
                         f"exact --input {source if isinstance(source, str) else 'VECTORS'} --index DIR)")
    return sorted(found)[0][1]


def reference_hits(ref_dir, query_sets: list[Mapping[str, Any]], k: int, threads: int = 1) -> list[dict[str, list]]:
    """The reference's top-k of each set of queries (the reference opened once)."""
    from .registry import open_searcher

    with open_searcher(ref_dir) as ref:
        return [ref.batch_search(qs, k=k, threads=threads) if qs else {} for qs in query_sets]


# -------------------------------------------------------------------------------------------------
# Measuring and walking the grid
# -------------------------------------------------------------------------------------------------


def measure(searcher, queries: Mapping[str, Any], ref: Mapping[str, list], k: int, options: dict[str, Any],
            ref_dir="the reference") -> Point:
    """Recall@k against ``ref`` and ms/query (wall and CPU, one thread) of ``options`` on ``queries``."""
    searcher.configure(**options)
    walls, cpus, spent = [], [], 0.0
    # A small sample searches in milliseconds, where one timing is noise: repeat until MIN_TIMED_S
    # (at most MAX_REPEATS times) and keep the fastest repeat (the one least disturbed by other load).
    while len(walls) < MAX_REPEATS and (not walls or spent < MIN_TIMED_S):
        t, c = time.perf_counter(), time.process_time()
        got = searcher.batch_search(queries, k=k, threads=1)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
        spent += walls[-1]
    check_same_documents(got, ref, k, ref_dir)
    n = max(1, len(queries))
    return Point(dict(options), recall_at(got, ref, k), 1000 * min(walls) / n, 1000 * min(cpus) / n)


def _grids(searcher, queries: Mapping[str, Any]) -> tuple[list, list, list]:
    grid = calibrated_options(searcher.backend)
    longest = max(len(searcher.prepare(q, v)) for q, v in queries.items())
    cuts = [c for c in grid["query_cut"] if c < longest] + [longest]
    knn = [v for v in grid.get("n_knn", (0,)) if v <= searcher.knn_neighbours] or [0]
    return cuts, list(grid["heap_factor"]), knn


def walk(searcher, queries: Mapping[str, Any], ref: Mapping[str, list], k: int, target: float, *,
         staircase: bool = True, ref_dir="the reference", on_point=None) -> list[Point]:
    """Measure settings from the fastest towards the most accurate (module doc); every point measured.

    ``staircase=False`` (the curve): every heap_factor of a query_cut until one reaches ``target``."""
    cuts, factors, knns = _grids(searcher, queries)
    searcher.configure(query_cut=cuts[0], heap_factor=factors[0], n_knn=0)
    searcher.batch_search(queries, k=k, threads=1)  # warm-up: the first search pays for cold caches
    points: list[Point] = []
    for n_knn in knns:
        bound = len(factors)  # heap_factors at index >= bound passed at a smaller query_cut: only slower here
        for cut in cuts:
            for j, hf in enumerate(factors[:bound] if staircase else factors):
                p = measure(searcher, queries, ref, k, dict(query_cut=cut, heap_factor=hf, n_knn=n_knn), ref_dir)
                points.append(p)
                if on_point:
                    on_point(p)
                if p.recall >= target:
                    bound = j
                    break
            if bound == 0:
                break
    return points


def choose(points: list[Point], target: float) -> Point | None:
    """The fastest (CPU ms/query: wall time inflates with other load) point reaching ``target``."""
    ok = [p for p in points if p.recall >= target]
    return min(ok, key=lambda p: (p.cpu_ms, p.ms)) if ok else None


def curve_table(points: list[Point], k: int) -> str:
    """The recall-latency table: one row per measured setting, ``*`` on the Pareto front."""
    front = {id(p) for p in points
             if not any(o.recall >= p.recall and o.cpu_ms < p.cpu_ms for o in points if o is not p)}
    rows = [f"{'setting':<44} {'recall@' + str(k):>12} {'ms/query':>9} {'CPU ms/q':>9}  pareto"]
    for p in sorted(points, key=lambda p: (p.cpu_ms, -p.recall)):
        rows.append(f"{p.label():<44} {p.recall:>12.4f} {p.ms:>9.3f} {p.cpu_ms:>9.3f}  {'*' if id(p) in front else ''}")
    return "\n".join(rows)


# -------------------------------------------------------------------------------------------------
# What the search CLI calls
# -------------------------------------------------------------------------------------------------


def _ids_sha(qids: list[str]) -> str:
    return hashlib.sha256("\n".join(qids).encode()).hexdigest()[:16]


@dataclass
class Plan:
    """What a search run does about calibration: the options it set, and what to do once it has its hits."""

    searcher: Any
    k: int
    backend: str
    documents: int
    entry: dict[str, Any] | None = None  # a new calibration to record after the run
    held_out: list[str] = field(default_factory=list)
    held_ref: dict[str, list] | None = None
    ref_dir: Any = None

    def finish(self, results: Mapping[str, list]) -> None:
        """Report held-out recall of the run's hits and record a new calibration."""
        from ..formats.calibration import write_calibration

        if self.held_ref is not None:
            r = recall_at({q: results[q] for q in self.held_out}, self.held_ref, self.k)
            _say(f"held-out recall@{self.k} {r:.4f} on {len(self.held_out)} queries not used for calibration "
                 f"(reference {self.ref_dir})")
            if self.entry is not None:
                self.entry["held_out"] = {"queries": len(self.held_out), "recall": round(r, 6)}
        if self.entry is not None:
            p = write_calibration(self.searcher.index_dir, self.backend, self.documents, self.entry)
            _say(f"recorded in {p}: later searches of this index reuse it")


def _opts(options: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v:g}" for k, v in options.items())


def plan_calibration(searcher, queries: Mapping[str, Any], req: CalibrationRequest, *, hits: int,
                     threads: int = 1) -> Plan | None:
    """Set ``searcher``'s options from a new or recorded calibration (module doc); None: nothing to do."""
    from ..formats.calibration import find_entry, read_calibration

    if req.target_recall is None and not req.curve:
        return None  # a plain search keeps the defaults (module doc)
    backend = get_backend(searcher.backend)
    if req.target_recall is not None:
        check_target(req.target_recall)
    refuse_uncalibrated(backend.name)
    grid = backend.calibration_grid()
    given = sorted(set(req.explicit_options) & set(grid))
    if given:
        raise UsageError(f"--{given[0].replace('_', '-')} conflicts with "
                         f"{'--target-recall' if req.target_recall is not None else '--calibration-curve'}, "
                         f"which chooses it")
    documents = int(searcher.num_docs)
    k = req.recall_at or hits
    if req.target_recall is not None and k > hits:
        raise UsageError(f"--recall-at {k} is above --hits {hits}")
    if req.target_recall is not None and not req.recalibrate:
        e = find_entry(read_calibration(searcher.index_dir, documents=documents), req.target_recall, k)
        if e is not None:
            searcher.configure(**e["options"])
            held = e.get("held_out")
            _say(f"reusing the calibration recorded in this index: {_opts(e['options'])} (recall@{k} "
                 f"{e['calibration']['recall']:.4f} on {e['calibration']['queries']} calibration queries"
                 + (f", {held['recall']:.4f} on {held['queries']} held out" if held else "")
                 + "; --recalibrate measures again)")
            return None
    qids = list(queries)
    n = sample_size(len(qids), req.queries)
    sample_ids, held_out = split_queries(qids, n, req.seed)
    ref_dir = Path(req.reference) if req.reference else find_reference(searcher.index_dir, searcher.meta)
    check_reference(searcher.index_dir, searcher.meta, ref_dir)
    sample = {q: queries[q] for q in sample_ids}
    held_q = {} if req.curve else {q: queries[q] for q in held_out}
    ref, held_ref = reference_hits(ref_dir, [sample, held_q], k, threads)
    default = backend.defaults("search")
    from .._console import progress

    if req.curve:
        with progress(desc="calibration curve", unit="setting") as bar:
            points = walk(searcher, sample, ref, k, 1.0, staircase=False, ref_dir=ref_dir,
                          on_point=lambda p: bar.update(1))
        print(f"recall@{k} vs latency of {searcher.index_dir} on {n} sample queries (seed {req.seed}; one thread; "
              f"reference {ref_dir})")
        print(curve_table(points, k))
        return None
    target = req.target_recall
    with progress(desc="calibrating", unit="setting") as bar:
        points = walk(searcher, sample, ref, k, target, ref_dir=ref_dir, on_point=lambda p: bar.update(1))
        base = measure(searcher, sample, ref, k, {o: default[o] for o in grid}, ref_dir)
    best = choose(points, target)
    if best is None:
        top = max(points, key=lambda p: p.recall)
        raise UsageError(f"no setting reaches recall@{k} {target:g} on the {n} calibration queries (best: {top.label()} "
                         f"at {top.recall:.4f}): lower the target, or rebuild the index with a larger --summary-energy "
                         f"or --n-postings (a block whose pruned summary misses every query term is skipped at "
                         f"any heap_factor)")
    searcher.configure(**best.options)
    _say(f"calibrated {backend.name} for recall@{k} >= {target:g} on {n} queries (seed {req.seed}, {len(points)} "
         f"settings): {best.label()} -> recall@{k} {best.recall:.4f}, {best.ms:.2f} ms/query "
         f"({best.cpu_ms:.2f} CPU ms; 1 thread); defaults {base.label()}: {base.recall:.4f}, {base.ms:.2f} ms/query")
    entry = {"target_recall": float(target), "recall_at": int(k), "options": best.options,
             "calibration": {"queries": n, "seed": req.seed, "recall": round(best.recall, 6),
                             "ms_per_query": round(best.ms, 4), "cpu_ms_per_query": round(best.cpu_ms, 4),
                             "query_ids_sha256": _ids_sha(sample_ids), "settings_measured": len(points),
                             "default": {"options": base.options, "recall": round(base.recall, 6),
                                         "ms_per_query": round(base.ms, 4)}},
             "held_out": None,
             "reference": {"index": str(Path(ref_dir).resolve()), "backend": read_index_meta(ref_dir)["backend"]},
             "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    return Plan(searcher, k, backend.name, documents, entry, held_out, held_ref, ref_dir)


# -------------------------------------------------------------------------------------------------
# What the index CLI calls (index --calibrate)
# -------------------------------------------------------------------------------------------------


def check_before_build(backend_name: str, inputs, index_dir, n_queries: int, req: CalibrationRequest, *,
                       quant_scale: float | None = None) -> Path:
    """Refuse ``index --calibrate`` input before the build writes anything: a backend with nothing to
    calibrate, a target outside (0, 1], a sample that leaves no held-out query, and a reference that
    cannot stand for the index about to be built from ``inputs`` (its metadata checked as
    :func:`check_reference` checks a built index's: rank-safe, same space, scale and document count).
    Returns the reference folder (given, or the sibling :func:`find_reference` picks).

    Whether the reference holds the *same* documents (not only as many) shows only when both are
    searched, after the build; that error leaves a complete index behind."""
    from ..formats.vectors_reader import open_collection

    refuse_uncalibrated(backend_name, "--calibrate")
    if req.target_recall is not None:
        check_target(req.target_recall)
    sample_size(n_queries, req.queries)
    coll = open_collection(inputs, kind="sparse", quant_scale=quant_scale)
    meta = {"vectors": coll.meta.to_json(), "source": coll.source()}  # what the index will record
    ref_dir = Path(req.reference) if req.reference else find_reference(index_dir, meta)
    if ref_dir.resolve() == Path(index_dir).resolve():
        raise UsageError(f"--calibration-reference {ref_dir} is the index being built: give another index")
    check_reference(index_dir, meta, ref_dir)
    return ref_dir


def calibrate_index(index_dir, queries: Mapping[str, Any], req: CalibrationRequest, *, threads: int = 1) -> None:
    """``index --calibrate``: print the recall@K-latency curve of the index just built (what ``search
    --calibration-curve`` prints on the same queries and seed); with ``req.target_recall``, also choose
    and record the setting ``search --target-recall`` would, reporting its recall on the held-out queries."""
    from dataclasses import replace

    from .registry import open_searcher

    k = req.recall_at
    if k is None:
        raise UsageError("--calibrate needs --recall-at K")
    with open_searcher(index_dir) as searcher:
        plan_calibration(searcher, queries, replace(req, curve=True, target_recall=None), hits=k, threads=threads)
        if req.target_recall is None:
            return
        plan = plan_calibration(searcher, queries, replace(req, curve=False, recalibrate=True), hits=k,
                                threads=threads)
        plan.finish(searcher.batch_search({q: queries[q] for q in plan.held_out}, k=k, threads=threads))
