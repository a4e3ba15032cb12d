"""python -m pyserini_splare.eval: evaluate a TREC run with ir_measures."""

from __future__ import annotations


from .._argtypes import ArgumentParser
from .._errors import cli_main, run
from .measures import DEFAULT_METRICS, evaluate

EPILOG = """\
Output: one line per metric, `metric<TAB>all<TAB>value` (with --per-query, also `metric<TAB>qid<TAB>value`).
Aggregates are means over every judged query (trec_eval -c): a judged query missing from the run scores 0.
A run that shares no query id, or no document id, with the qrels is refused (a run of another collection
scores 0 on everything); --allow-disjoint scores it anyway.

examples:
  python -m pyserini_splare.eval --qrels neuclir --run runs/run1.txt
  python -m pyserini_splare.eval --qrels cacm --run runs/cacm.bm25.txt --metrics AP P@30
  python -m pyserini_splare.eval --qrels qrels.txt --run run.txt --metrics nDCG@20 --per-query
"""


def build_parser():
    p = ArgumentParser(prog="python -m pyserini_splare.eval", epilog=EPILOG,
                       description="Evaluate a TREC run (ir_measures; nDCG@20 is the WSDM Cup's metric).")
    p.add_argument("--qrels", required=True, help="qrels name (neuclir, cacm, neuclir22-fa, ...) or a TREC qrels file")
    p.add_argument("--run", required=True, help="TREC run file")
    p.add_argument("--metrics", nargs="+", default=list(DEFAULT_METRICS),
                   help=f"ir_measures names (default: {' '.join(DEFAULT_METRICS)})")
    p.add_argument("--per-query", action="store_true", help="also print one line per query")
    p.add_argument("--allow-disjoint", action="store_true",
                   help="score a run that shares no query or no document id with the qrels (every judged query "
                        "then scores 0) instead of refusing it as a run of another collection")
    p.add_argument("--data-dir", default=None, help="folder with topics and qrels (default $PYSERINI_SPLARE_DATA)")
    return p


def _warn_missing_queries(judged: set[str], in_run: set[str], run: str) -> None:
    """One warning line when judged queries are absent from the run: they score 0 (trec_eval -c), which is
    right for an official evaluation but, unannounced, reads as a bad system rather than a partial run.
    (A run sharing no query or no document with the qrels is an error: measures.check_overlap.)"""
    import sys

    missing = sorted(judged - in_run)
    if missing and judged & in_run:
        print(f"warning: {len(missing)} of {len(judged)} judged queries have no results in {run} and score 0 "
              f"(trec_eval -c; first: {missing[0]!r})", file=sys.stderr)


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    from ..formats.runs import read_trec_run
    from ..topics import get_qrels
    from .measures import check_overlap

    judgments = get_qrels(args.qrels, args.data_dir).judgments
    ranked = read_trec_run(args.run)
    if not args.allow_disjoint:
        check_overlap(judgments, ranked)
    _warn_missing_queries(set(judgments), set(ranked), args.run)
    if args.per_query:
        rows = evaluate(judgments, ranked, args.metrics, per_query=True, allow_disjoint=True)
        for metric, qid, value in sorted(rows, key=lambda r: (r[0], r[1])):
            print(f"{metric}\t{qid}\t{value:.4f}")
    agg = evaluate(judgments, ranked, args.metrics, allow_disjoint=True)  # checked above
    for metric, value in agg.items():
        print(f"{metric}\tall\t{value:.4f}")
    return 0


if __name__ == "__main__":
    run(main)
