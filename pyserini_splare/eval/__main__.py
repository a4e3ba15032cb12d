"""python -m pyserini_splare.eval: evaluate a TREC run with ir_measures."""

from __future__ import annotations

import argparse

from .._errors import cli_main, run
from .measures import DEFAULT_METRICS, evaluate

EPILOG = """\
Output: one line per metric, `metric<TAB>all<TAB>value` (with --per-query, also `metric<TAB>qid<TAB>value`).
Aggregates are means over every judged query (trec_eval -c): a judged query missing from the run scores 0.

examples:
  python -m pyserini_splare.eval --qrels neuclir --run runs/run1.txt
  python -m pyserini_splare.eval --qrels cacm --run runs/cacm.bm25.txt --metrics AP P@30
  python -m pyserini_splare.eval --qrels qrels.txt --run run.txt --metrics nDCG@20 --per-query
"""


def build_parser():
    p = argparse.ArgumentParser(prog="python -m pyserini_splare.eval",
                                description="Evaluate a TREC run (ir_measures; nDCG@20 is the WSDM Cup's metric).",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--qrels", required=True, help="qrels name (neuclir, cacm, neuclir22-fa, ...) or a TREC qrels file")
    p.add_argument("--run", required=True, help="TREC run file")
    p.add_argument("--metrics", nargs="+", default=list(DEFAULT_METRICS),
                   help=f"ir_measures names (default: {' '.join(DEFAULT_METRICS)})")
    p.add_argument("--per-query", action="store_true", help="also print one line per query")
    p.add_argument("--data-dir", default=None, help="folder with topics and qrels (default $PYSERINI_SPLARE_DATA)")
    return p


def _warn_missing_queries(args) -> None:
    """One warning line when judged queries are absent from the run: they score 0 (trec_eval -c), which is
    right for an official evaluation but, unannounced, reads as a bad system rather than a partial run.
    (A run sharing no query with the qrels is an error, raised by evaluate.)"""
    import sys

    from ..formats.runs import read_trec_run
    from ..topics import get_qrels

    judged = set(get_qrels(args.qrels, args.data_dir).judgments)
    in_run = set(read_trec_run(args.run))
    missing = sorted(judged - in_run)
    if missing and judged & in_run:
        print(f"warning: {len(missing)} of {len(judged)} judged queries have no results in {args.run} and score 0 "
              f"(trec_eval -c; first: {missing[0]!r})", file=sys.stderr)


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    _warn_missing_queries(args)
    if args.per_query:
        rows = evaluate(args.qrels, args.run, args.metrics, per_query=True, data_dir=args.data_dir)
        for metric, qid, value in sorted(rows, key=lambda r: (r[0], r[1])):
            print(f"{metric}\t{qid}\t{value:.4f}")
    agg = evaluate(args.qrels, args.run, args.metrics, data_dir=args.data_dir)
    for metric, value in agg.items():
        print(f"{metric}\tall\t{value:.4f}")
    return 0


if __name__ == "__main__":
    run(main)
