"""Fusion of TREC runs with ranx (Bassani & Romelli, "ranx.fuse: A Python Library for Metasearch", CIKM 2022).

Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009)::

    RRF(d) = sum over runs r that retrieve d within the depth of  1 / (k + rank_r(d)),  rank 1-based

as Pyserini's ``reciprocal_rank_fusion`` computes it. The choices ranx leaves open (ranks from scores with
docid ties, depth, queries missing from some runs, normalization) are made explicit in docs/fusion.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping, Sequence

from ..formats.runs import ranked

# Our method name -> (ranx method name, uses ranks only). Kept to ranx's unsupervised methods that
# need no training qrels (probfuse, segfuse, ... are supervised and would need --qrels).
METHODS: dict[str, tuple[str, bool]] = {
    "rrf": ("rrf", True),
    "isr": ("isr", True),
    "combsum": ("sum", False),
    "combmnz": ("mnz", False),
    "combanz": ("anz", False),
    "combmed": ("med", False),
    "max": ("max", False),
    "min": ("min", False),
    "wsum": ("wsum", False),
}

# ranx normalizations (ranx.normalization.norm_switch) plus "none".
NORMS = ("none", "min-max", "max", "sum", "zmuv", "rank", "borda")

QueryMode = Literal["union", "intersection"]


@dataclass
class FusionReport:
    """What happened to the query sets: printed by the CLI as one warning line when they differ."""

    run_queries: list[int]
    fused_queries: int
    partial_queries: int = 0
    dropped_queries: int = 0
    mode: str = "union"

    @property
    def differ(self) -> bool:
        return self.partial_queries > 0 or self.dropped_queries > 0

    def warning(self, names: Sequence[str] | None = None) -> str:
        names = names or [f"run {i + 1}" for i in range(len(self.run_queries))]
        counts = ", ".join(f"{n}: {c}" for n, c in zip(names, self.run_queries))
        if self.mode == "union":
            return (f"warning: the runs' query sets differ ({counts}); fused the union of {self.fused_queries} "
                    f"queries, {self.partial_queries} of them from only some runs (a run without a query is fused "
                    f"as having retrieved nothing for it; --queries intersection keeps only shared queries)")
        return (f"warning: the runs' query sets differ ({counts}); kept the {self.fused_queries} queries all runs "
                f"share, dropped {self.dropped_queries} (--queries union fuses them all)")


def _check_settings(method: str, norm: str | None, rrf_k: float, depth: int | None, k: int | None,
                    weights: Sequence[float] | None, queries: str, n_runs: int) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown fusion method {method!r} (choose from {', '.join(METHODS)})")
    rank_based = METHODS[method][1]
    if norm is None:
        norm = "none" if rank_based else "min-max"
    if norm not in NORMS:
        raise ValueError(f"unknown normalization {norm!r} (choose from {', '.join(NORMS)})")
    if rank_based and norm != "none":
        raise ValueError(f"{method} fuses ranks, so a score normalization ({norm!r}) does not apply")
    if not rrf_k > 0:
        raise ValueError(f"rrf k must be positive, got {rrf_k}")
    for name, v in (("depth", depth), ("k", k)):
        if v is not None and v <= 0:
            raise ValueError(f"{name} must be positive, got {v}")
    if queries not in ("union", "intersection"):
        raise ValueError(f"queries must be 'union' or 'intersection', got {queries!r}")
    if n_runs < 2:
        raise ValueError(f"fusion needs at least two runs, got {n_runs}")
    if weights is not None:
        if method != "wsum":
            raise ValueError(f"weights apply to method 'wsum' only, not {method!r}")
        if len(weights) != n_runs:
            raise ValueError(f"{len(weights)} weights for {n_runs} runs")
    elif method == "wsum":
        raise ValueError("method 'wsum' needs one weight per run")
    return norm


def fuse_runs(
    runs: Sequence[Mapping[str, Mapping[str, float]]],
    method: str = "rrf",
    *,
    rrf_k: float = 60,
    depth: int | None = 1000,
    k: int | None = 1000,
    norm: str | None = None,
    weights: Sequence[float] | None = None,
    queries: QueryMode = "union",
) -> tuple[dict[str, dict[str, float]], FusionReport]:
    """Fuse runs given as ``{qid: {docid: score}}``; returns the fused run (cut at ``k``) and a report.

    ``rrf_k``, ``depth`` and ``k`` are Pyserini's; ``norm`` defaults to none for rank-based methods and ranx's
    ``min-max`` for score-based ones.
    """
    norm = _check_settings(method, norm, rrf_k, depth, k, weights, queries, len(runs))
    ranx_method, rank_based = METHODS[method]

    # Cut to depth in our deterministic order; rank-based methods get scores that encode the order.
    cut: list[dict[str, dict[str, float]]] = []
    for run in runs:
        out = {}
        for qid, hits in run.items():
            top = ranked(hits, depth)
            if not top:
                continue
            if rank_based:
                n = len(top)
                out[qid] = {d: float(n - i) for i, (d, _) in enumerate(top)}
            else:
                out[qid] = dict(top)
        cut.append(out)

    qsets = [set(r) for r in cut]
    union = set().union(*qsets)
    common = set.intersection(*qsets)
    keep = union if queries == "union" else common
    report = FusionReport([len(s) for s in qsets], len(keep), mode=queries,
                          partial_queries=len(union - common) if queries == "union" else 0,
                          dropped_queries=len(union - common) if queries == "intersection" else 0)

    # ranx.fuse needs identical query sets: a run lacking a query gets an empty result list for it
    # (it retrieved nothing), and ranx fuses everything in one call.
    order = sorted(keep)
    if not order:  # --queries intersection of runs that share no query
        return {}, report
    if norm == "zmuv" and report.partial_queries:
        # ranx 0.3.21's zmuv kernel (a numba prange) takes the mean of an empty list for a padded
        # query and silently empties other queries of the same run: refuse rather than fuse wrongly.
        raise ValueError(f"--norm zmuv cannot fuse runs whose query sets differ ({report.partial_queries} queries "
                         f"are missing from some runs; ranx's zmuv fails on an empty result list): use "
                         f"--queries intersection or another normalization")
    padded = [{qid: run.get(qid, {}) for qid in order} for run in cut]
    out = _ranx_fuse(padded, ranx_method, norm, rrf_k, weights)
    return {qid: dict(ranked(out.get(qid, {}), k)) for qid in order}, report


def _ranx_fuse(runs: list[dict], ranx_method: str, norm: str, rrf_k: float, weights) -> dict[str, dict[str, float]]:
    """``ranx.fuse`` on runs with one query set; returns plain ``{qid: {docid: score}}``."""
    import warnings

    from ranx import Run, fuse

    params = {}
    if ranx_method == "rrf":
        params["k"] = rrf_k
    if ranx_method == "wsum":
        params["weights"] = list(weights)
    with warnings.catch_warnings():
        # numba's "unsafe cast from uint64 to int64" inside ranx's rrf: harmless here.
        warnings.simplefilter("ignore")
        out = fuse([Run.from_dict(r) for r in runs], norm=None if norm == "none" else norm, method=ranx_method,
                   params=params)
    return {q: {d: float(s) for d, s in hits.items()} for q, hits in out.to_dict().items()}
