"""python -m pyserini_splare.fusion: fuse TREC runs (RRF and ranx's score-based methods)."""

from __future__ import annotations

import argparse
import sys

from .._argtypes import ArgumentParser, positive_float
from .._errors import UsageError, cli_main, run
from .._outputs import check_output_file
from .fuse import METHODS, NORMS

EPILOG = """\
RRF(d) = sum over runs of 1 / (rrf.k + rank(d)), ranks starting at 1 (Cormack et al. 2009; same as
Pyserini's `python -m pyserini.fusion --method rrf`). Ranks follow score descending, ties by docid.
Any TREC run fuses, including external ones (e.g. a PLAID-X run file).

examples:
  # WSDM Cup 2026 RUN2: SPLARE-7B + SPLADE-8B, RRF with k=10
  python -m pyserini_splare.fusion --runs runs/splare.txt runs/splade8b.txt \\
      --method rrf --rrf.k 10 --output runs/run2.rrf10.txt
  # RUN5: RRF(RUN2, RUN4) with k=50
  python -m pyserini_splare.fusion --runs runs/run2.txt runs/run4.txt --method rrf --rrf.k 50 --output runs/run5.txt
  # CombSUM of min-max normalized scores, top 100 of each run, keep 100
  python -m pyserini_splare.fusion --runs a.txt b.txt --method combsum --norm min-max --depth 100 --k 100 --output f.txt
  # weighted sum
  python -m pyserini_splare.fusion --runs a.txt b.txt --method wsum --weights 0.7 0.3 --output f.txt

Runs with different query sets: by default every query of any run is fused, a run that lacks a query
counting as having retrieved nothing for it (it adds nothing, or under --norm borda the same share to
every candidate; docs/fusion.md); a warning line gives the counts. --queries intersection keeps shared
queries only.
ranx compiles its fusion code with numba on first use (~1m45s once per fresh environment, ~15-20 s per
later process).
"""


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m pyserini_splare.fusion", epilog=EPILOG,
                       description="Fuse TREC run files with ranx and write a TREC run.")
    p.add_argument("--runs", nargs="+", required=True, metavar="RUN", help="two or more TREC run files")
    p.add_argument("--output", required=True, help="fused TREC run to write (atomically)")
    p.add_argument("--method", default="rrf", choices=list(METHODS), help="fusion method (default rrf)")
    p.add_argument("--rrf.k", dest="rrf_k", type=positive_float, default=60,
                   help="RRF constant k (default 60 as in Pyserini and Cormack et al.; the SPLARE system uses 10 and 50)")
    p.add_argument("--depth", type=int, default=1000, help="hits of each run that enter fusion (default 1000)")
    p.add_argument("--k", type=int, default=1000, help="fused hits kept per query (default 1000)")
    p.add_argument("--norm", default=None, choices=list(NORMS),
                   help="score normalization for score-based methods (default min-max; not used by rrf/isr)")
    p.add_argument("--weights", nargs="+", type=float, default=None, help="--method wsum: one weight per run")
    p.add_argument("--queries", default="union", choices=["union", "intersection"],
                   help="queries to fuse when the runs' query sets differ (default union)")
    p.add_argument("--run-tag", default=None, help="run tag (default: fusion method, e.g. rrf10)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    return p


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    from ..formats.runs import read_trec_run, write_run
    from .fuse import fuse_runs

    check_output_file(args.output, overwrite=args.overwrite, what="--output")  # the one output rule (docs/errors.md)
    if len(args.runs) < 2:
        raise UsageError("--runs needs at least two run files")
    runs = [read_trec_run(p) for p in args.runs]
    try:
        fused, report = fuse_runs(runs, args.method, rrf_k=args.rrf_k, depth=args.depth, k=args.k,
                                  norm=args.norm, weights=args.weights, queries=args.queries)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if not fused:  # --queries intersection of runs that share no query: an empty run helps no one
        raise UsageError(f"the runs share no query: --queries intersection leaves nothing to fuse "
                         f"({', '.join(f'{p}: {n}' for p, n in zip(args.runs, report.run_queries))} queries)")
    if report.differ:
        print(report.warning(args.runs), file=sys.stderr)
    tag = args.run_tag or (f"rrf{args.rrf_k:g}" if args.method == "rrf" else args.method)
    n = write_run(args.output, fused, tag)
    print(f"fused {len(runs)} runs ({args.method}) into {len(fused)} queries, {n} lines: {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run(main)
