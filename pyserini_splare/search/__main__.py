"""python -m pyserini_splare.search: search an index with topics, write a TREC run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._argtypes import ArgumentParser, non_negative_int, positive_float, positive_int, unit_interval
from .._console import add_verbose_argument, set_verbose
from .._errors import UsageError, cli_main, run
from .._outputs import check_output_file
from ..backends import add_option_flags, options_from_args
from .calibrate import DEFAULT_SAMPLE, CalibrationRequest, refuse_uncalibrated

EPILOG = """\
The backend comes from the index's metadata: a Lucene impact, Seismic or exact index is searched with
sparse query vectors (from --query-vectors, or encoded on the fly with --encoder), a BM25 index with
the topics' text, a faiss index with dense query embeddings.

examples:
  # BM25 on CACM (Anserini defaults k1=0.9 b=0.4)
  python -m pyserini_splare.search --index indexes/cacm.bm25 --topics cacm --output runs/cacm.bm25.txt
  # pre-encoded queries, one {"id": qid, "vector": {term: weight}} per line
  python -m pyserini_splare.search --index indexes/splare.lucene --topics neuclir \\
      --query-vectors queries.splare.jsonl --output runs/run1.txt --hits 1000 --threads 8
  # query vectors whose weights are already quantized integers at the index's scale
  python -m pyserini_splare.search --index indexes/splare.lucene --query-vectors queries.q100.jsonl \\
      --query-vectors-quantized --output runs/run1.txt
  # Seismic (approximate): the query's 20 heaviest terms, skip blocks below 0.9 x the k-th score
  python -m pyserini_splare.search --index indexes/splare.seismic --query-vectors queries.splare.jsonl \\
      --output runs/run1.seismic.txt --query-cut 20 --heap-factor 0.9 --threads 8
  # two-step search: the first stage with each query's 10 largest weights on an index of pruned
  # documents (index --prune-docs topk:64 --forward-store), its 100 best rescored with the full vectors
  python -m pyserini_splare.search --index indexes/splare.top64 --query-vectors queries.splare.jsonl \\
      --prune-queries topk:10 --rescore 100 --hits 100 --output runs/run1.twostep.txt
  # Seismic at the fastest setting whose recall@1000 reaches 0.99 against an exact index of the same
  # vectors (measured on 200 sample queries, reported on the rest; recorded in the index for next time)
  python -m pyserini_splare.search --index indexes/splare.seismic --query-vectors queries.splare.jsonl \\
      --output runs/run1.seismic.txt --target-recall 0.99 --recall-at 1000 --calibration-reference indexes/splare.exact
  # the recall-latency table of Seismic's settings on sample queries (no run written)
  python -m pyserini_splare.search --index indexes/splare.seismic --query-vectors queries.splare.jsonl \\
      --calibration-curve --recall-at 1000 --calibration-reference indexes/splare.exact
  # the topics registry
  python -m pyserini_splare.search --list-topics

`--topics neuclir` is the WSDM Cup 2026 dev set (41 English queries over NeuCLIR1). Topic and qrels files
are looked up in $PYSERINI_SPLARE_DATA (or --data-dir), else ~/.cache/pyserini_splare/topics-and-qrels.
"""


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="python -m pyserini_splare.search", description="Search an index and write a TREC run file.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--index", nargs="+", help="index directory built by `python -m pyserini_splare.index`; several "
                                              "Lucene impact indexes (shards) are searched as one (exact top-k merge)")
    p.add_argument("--topics", help="topics name (see --list-topics; `neuclir` = WSDM Cup 2026 dev) or a file "
                                    "(TSV qid<TAB>text, TREC SGML, Anserini CACM format)")
    p.add_argument("--output", help="TREC run file to write (atomically)")
    p.add_argument("--query-vectors", metavar="JSONL",
                   help="pre-encoded queries: one {\"id\": qid, \"vector\": {term: weight}} per line; weights are "
                        "model outputs, quantized with the index's scale whatever their number type (1 and 1.0 "
                        "are the same weight)")
    p.add_argument("--query-vectors-quantized", action="store_true",
                   help="the --query-vectors weights are already quantized integers at the index's scale: use "
                        "them as they are")
    p.add_argument("--encoder", metavar="SPEC", help="encode the topics on the fly (e.g. splade:/path/to/model)")
    p.add_argument("--hits", type=positive_int, default=1000, help="hits per query (default 1000)")
    p.add_argument("--threads", type=positive_int, default=1, help="search threads (default 1)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="queries per batch (default 64)")
    p.add_argument("--run-tag", default=None, help="run tag, the 6th column (default: the index folder's name)")
    p.add_argument("--topk", type=non_negative_int, default=0,
                   help="keep the k largest query weights (Top-K pooling; the paper's pooled setting is 40); 0 keeps all")
    two = p.add_argument_group("two-step search (an index built with --forward-store; docs/search.md)")
    two.add_argument("--rescore", type=positive_int, default=None, metavar="N",
                     help="rescore the first stage's N best hits per query with the full query and the full "
                          "document vectors of the index's forward store; the run keeps min(--hits, N) per query")
    two.add_argument("--prune-queries", metavar="SPEC", default=None,
                     help="prune the queries: topk:K, mass:F or mass:F,topk:K (with --rescore, the first stage's "
                          "queries only; without it, like --topk)")
    p.add_argument("--device", default="cpu", help="--encoder: torch device (cpu, cuda:0)")
    p.add_argument("--max-length", type=int, default=None, help="--encoder: max query tokens")
    p.add_argument("--searcher-options", metavar="JSON", default=None,
                   help="backend searcher options as a JSON object of the names below (see docs/search.md)")
    p.add_argument("--data-dir", default=None, help="folder with topics and qrels (default $PYSERINI_SPLARE_DATA)")
    p.add_argument("--java-heap", default=None, help="JVM heap for Lucene (default 4g or $PYSERINI_SPLARE_JAVA_HEAP)")
    p.add_argument("--list-topics", action="store_true", help="list the registered topics and qrels names and exit")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    c = p.add_argument_group("calibration of approximate indexes (seismic; docs/search.md)")
    c.add_argument("--target-recall", type=unit_interval, metavar="R",
                   help="search with the fastest setting whose recall@K against a rank-safe reference reaches R "
                        "on calibration queries (measured once, then recorded in the index and reused)")
    c.add_argument("--recall-at", type=positive_int, metavar="K", help="the K of recall@K (default --hits)")
    c.add_argument("--calibration-queries", type=positive_float, metavar="N",
                   help=f"calibrate on N topics (or this fraction of them, if < 1), drawn with --calibration-seed; "
                        f"the rest are held out and recall is reported on them (default min({DEFAULT_SAMPLE}, "
                        f"half the topics))")
    c.add_argument("--calibration-seed", type=int, default=0, help="seed of the calibration sample (default 0)")
    c.add_argument("--calibration-reference", metavar="DIR",
                   help="exact or Lucene impact index of the same vectors (default: a sibling folder whose "
                        "index metadata names the same source vectors)")
    c.add_argument("--recalibrate", action="store_true", help="measure again even if the index records a calibration")
    c.add_argument("--calibration-curve", action="store_true",
                   help="print the recall@K vs ms/query table of the calibrated settings on sample queries; "
                        "writes no run (no --output)")
    add_verbose_argument(p)
    add_option_flags(p, "search")
    return p


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.list_topics:
        from ..topics import list_registry

        print(list_registry())
        return 0
    for flag in ("index",) + (() if args.calibration_curve else ("output",)):
        if not getattr(args, flag):
            raise UsageError(f"--{flag} is required (see --help)")
    if args.calibration_curve and args.output:
        raise UsageError("--calibration-curve prints a table and writes no run: drop --output")
    if args.calibration_curve and args.target_recall is not None:
        raise UsageError("give --calibration-curve (a table) or --target-recall (a calibrated run), not both")
    if args.recalibrate and args.target_recall is None:
        raise UsageError("--recalibrate needs --target-recall")
    if args.output:
        check_output_file(args.output, overwrite=args.overwrite, what="--output")  # the one output rule (docs/errors.md)
    set_verbose(args.verbose)
    from ..backends import get_backend
    from ..formats.index_meta import read_index_meta
    from .runner import SearchJob, search_run

    from .group import index_or_group

    # A run tag from several shard indexes' names: the group folder made for the search is temporary.
    tag = args.run_tag or (None if len(args.index) == 1 else "+".join(Path(i.rstrip("/")).name for i in args.index))
    with index_or_group(args.index) as index:
        meta = read_index_meta(index)
        backend = get_backend(meta["backend"])
        from ..formats.licence import licence_notice

        if licence_notice(meta):
            print(licence_notice(meta), file=sys.stderr)
        try:
            options = options_from_args(args, backend, "search", args.searcher_options)
        except UsageError as e:
            raise UsageError(f"bad searcher options for a {backend.name} index: {e}") from None
        if args.target_recall is not None or args.calibration_curve:
            if args.rescore is not None:  # the calibration measures the first stage alone
                raise UsageError("--target-recall / --calibration-curve calibrate a one-stage search: drop --rescore")
            refuse_uncalibrated(backend.name)  # before a searcher (or the JVM) starts
            if len(args.index) > 1:
                raise UsageError("--target-recall and --calibration-curve take one index")
        calibration = CalibrationRequest(
            target_recall=args.target_recall, recall_at=args.recall_at, queries=args.calibration_queries,
            seed=args.calibration_seed, reference=args.calibration_reference, recalibrate=args.recalibrate,
            curve=args.calibration_curve, explicit_options=tuple(options))
        topics = None
        if args.topics:
            from ..topics import get_topics

            topics = get_topics(args.topics, args.data_dir)
        search_run(SearchJob(
            index=index, output=args.output, topics=topics, query_vectors=args.query_vectors,
            query_vectors_quantized=args.query_vectors_quantized, encoder=args.encoder, hits=args.hits,
            threads=args.threads, batch_size=args.batch_size, run_tag=tag, topk=args.topk, device=args.device,
            max_length=args.max_length, options=options, java_heap=args.java_heap, rescore=args.rescore,
            prune_queries=args.prune_queries, calibration=calibration))
    return 0


if __name__ == "__main__":
    run(main)
