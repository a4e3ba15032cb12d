"""python -m pyserini_splare.index: build an index from vectors directories (or BM25 from raw text).

``--calibrate`` then runs the search stage's calibration (:mod:`pyserini_splare.search.calibrate`) on the
index just built. A stage's CLI may import the stages below it (layer 8, docs/architecture.md), and this
adds no loop to the stage graph: search/ imports nothing of index/ (each index folder's files are owned in
formats/, below both).
"""

from __future__ import annotations

import argparse
import sys

from .._argtypes import ArgumentParser, positive_float, positive_int, unit_interval
from .._console import add_verbose_argument, set_verbose
from .._errors import UsageError, cli_main, run
from ..backends import BACKENDS, add_option_flags, get_backend, options_from_args
from ..search.calibrate import DEFAULT_SAMPLE

_W = max(map(len, BACKENDS))
EPILOG = "backends:\n" + "".join(f"  {b.name:<{_W}}  {b.summary}\n" for b in BACKENDS.values()) + """
Backend options: the flags above, or --options with a JSON object of the same names (docs/indexing.md);
an option the backend does not have is an error.

examples:
  python -m pyserini_splare.index --backend lucene --input vectors/splare --index indexes/splare.lucene --threads 8
  # shards written by `encode --shard-id 0/1 --shard-num 2` are one collection
  python -m pyserini_splare.index --backend seismic --input vectors/splare.s0 vectors/splare.s1 \\
      --index indexes/splare.seismic --n-postings auto
  # two-step search: index the documents' 64 largest weights, keep the full vectors for --rescore
  python -m pyserini_splare.index --backend exact --input vectors/splare --index indexes/splare.top64 \\
      --prune-docs topk:64 --forward-store
  # Seismic, then its recall@1000-latency curve on 200 sample queries against an exact index of the same
  # vectors (a sibling folder found by its metadata, or --calibration-reference DIR); with
  # --target-recall 0.99 the fastest setting reaching it is also recorded for `search --target-recall 0.99`
  python -m pyserini_splare.index --backend exact --input vectors/splare --index indexes/splare.exact
  python -m pyserini_splare.index --backend seismic --input vectors/splare --index indexes/splare.seismic \\
      --calibrate --calibration-query-vectors queries.splare.jsonl --recall-at 1000 --target-recall 0.99
  # Anserini indexes every file of --input: give it a folder holding only the collection (the shared
  # cacm folder also holds topics, qrels and a run, which would become documents)
  mkdir -p collections/cacm && cp $PYSERINI_SPLARE_DATA/cacm/cacm.tar.gz collections/cacm/
  python -m pyserini_splare.index --backend bm25 --collection HtmlCollection \\
      --input collections/cacm --index indexes/cacm.bm25
"""


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="python -m pyserini_splare.index",
        description="Build an index. The backend, the vectors' feature space and quantization scale are "
                    "recorded in the index, so `python -m pyserini_splare.search` needs only --index.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", required=True, choices=list(BACKENDS), help="index type (see below)")
    p.add_argument("--input", required=True, nargs="+", metavar="DIR",
                   help="vectors directory written by `encode`, or several shard directories of one collection "
                        "(for bm25, a collection folder)")
    p.add_argument("--index", required=True, help="output index directory (must not exist unless --overwrite)")
    p.add_argument("--threads", type=positive_int, default=1, help="indexing threads (default 1)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing index directory")
    p.add_argument("--options", default=None, metavar="JSON",
                   help="backend build options as a JSON object, e.g. '{\"n_postings\": 2000}' (see docs/indexing.md)")
    p.add_argument("--java-heap", default=None, help="JVM heap for Lucene backends (default 4g or $PYSERINI_SPLARE_JAVA_HEAP)")
    two = p.add_argument_group("two-step search (sparse backends; docs/indexing.md)")
    two.add_argument("--prune-docs", metavar="SPEC", default=None,
                     help="index the documents pruned: topk:K (the K largest weights), mass:F (the fewest largest "
                          "weights holding F of the mass) or mass:F,topk:K; --input stays as it is")
    two.add_argument("--forward-store", nargs="?", const=True, default=False, metavar="FULL_DIR",
                     help="also store the full vectors of --input (or of FULL_DIR, when --input is already pruned) in "
                          "INDEX/forward, for `search --rescore N`")
    c = p.add_argument_group("calibration of approximate indexes (seismic; docs/search.md)")
    c.add_argument("--calibrate", action="store_true",
                   help="after the build, print the recall@K vs ms/query table of the backend's query settings on "
                        "sample queries, as `search --calibration-curve` does (checked before building)")
    c.add_argument("--calibration-query-vectors", metavar="JSONL",
                   help="--calibrate: the queries, one {\"id\": qid, \"vector\": {term: weight}} per line "
                        "(as search's --query-vectors)")
    c.add_argument("--calibration-query-vectors-quantized", action="store_true",
                   help="the --calibration-query-vectors weights are integers at the index's scale already")
    c.add_argument("--calibration-topics", metavar="NAME|FILE",
                   help="--calibrate on these topics' vectors only (a topics name or file, as search's --topics)")
    c.add_argument("--recall-at", type=positive_int, metavar="K",
                   help="--calibrate: the K of recall@K (default 1000)")
    c.add_argument("--calibration-queries", type=positive_float, metavar="N",
                   help=f"--calibrate on N queries (or this fraction, if < 1) drawn with --calibration-seed "
                        f"(default min({DEFAULT_SAMPLE}, half the queries); the rest are held out)")
    c.add_argument("--calibration-seed", type=int, help="seed of the calibration sample (default 0)")
    c.add_argument("--calibration-reference", metavar="DIR",
                   help="exact or Lucene impact index of the same vectors (default: a sibling folder of --index "
                        "whose index metadata names the same --input)")
    c.add_argument("--target-recall", type=unit_interval, metavar="R",
                   help="--calibrate: also record the fastest setting whose recall@K reaches R, which "
                        "`search --target-recall R --recall-at K` then reuses")
    add_verbose_argument(p)
    add_option_flags(p, "build")
    return p


_CALIBRATION_FLAGS = ("calibration_query_vectors", "calibration_query_vectors_quantized", "calibration_topics",
                      "recall_at", "calibration_queries", "calibration_seed", "calibration_reference", "target_recall")


def _calibration(args, backend, options):
    """``(request, queries)`` for --calibrate, checked before anything is built (one error line, no
    index left half-written); None without --calibrate."""
    if not args.calibrate:
        given = [f for f in _CALIBRATION_FLAGS if getattr(args, f) not in (None, False)]
        if given:
            raise UsageError(f"--{given[0].replace('_', '-')} needs --calibrate")
        return None
    if args.prune_docs is not None:  # the reference would have to hold the pruned vectors
        raise UsageError("--calibrate measures an index of the vectors as given: calibrate a --prune-docs index "
                         "with `search --calibration-curve` against an index of the same pruned vectors")
    from .._outputs import check_output_dir
    from ..search.calibrate import CalibrationRequest, check_before_build, refuse_uncalibrated

    refuse_uncalibrated(backend.name, "--calibrate")
    if not args.calibration_query_vectors:
        raise UsageError("--calibrate needs queries: pass --calibration-query-vectors JSONL")
    check_output_dir(args.index, overwrite=args.overwrite, what="--index")  # its parent is where a reference is looked for
    topics = None
    if args.calibration_topics:
        from ..topics import get_topics

        topics = get_topics(args.calibration_topics, None)
    from ..search.queries import read_query_file

    queries = read_query_file(args.calibration_query_vectors, topics,
                              quantized=args.calibration_query_vectors_quantized)
    req = CalibrationRequest(target_recall=args.target_recall, recall_at=args.recall_at or 1000,
                             queries=args.calibration_queries, seed=args.calibration_seed or 0,
                             reference=args.calibration_reference)
    ref = check_before_build(backend.name, args.input, args.index, len(queries), req,
                             quant_scale=options.get("quant_scale"))
    req.reference = str(ref)
    return req, queries


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    set_verbose(args.verbose)
    backend = get_backend(args.backend)
    options = options_from_args(args, backend, "build", args.options)
    calibration = _calibration(args, backend, options)
    if args.java_heap and backend.needs_jvm:
        from .._java import start_jvm

        start_jvm(args.java_heap)
    if args.prune_docs is not None or args.forward_store:
        from .two_step import build_two_step

        meta = build_two_step(backend.name, args.input, args.index, threads=args.threads, overwrite=args.overwrite,
                              prune_docs=args.prune_docs, forward_store=args.forward_store, **options)
    else:
        from .backends import build_index

        meta = build_index(backend.name, args.input, args.index, threads=args.threads, overwrite=args.overwrite,
                           **options)
    build = meta.get("build", {})
    print(f"built {backend.name} index {args.index}: " + ", ".join(f"{k}={v}" for k, v in build.items()))
    from .advice import advice

    for note in advice(meta):
        print(f"note: {note}", file=sys.stderr)
    from ..formats.licence import licence_notice

    if licence_notice(meta):
        print(licence_notice(meta), file=sys.stderr)
    if calibration is not None:
        from ..search.calibrate import calibrate_index

        calibrate_index(args.index, calibration[1], calibration[0], threads=args.threads)
    return 0


if __name__ == "__main__":
    run(main)
