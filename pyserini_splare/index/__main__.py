"""python -m pyserini_splare.index: build an index from vectors directories (or BM25 from raw text)."""

from __future__ import annotations

import argparse
import sys

from .._argtypes import ArgumentParser, positive_int
from .._console import add_verbose_argument, set_verbose
from .._errors import cli_main, run
from ..backends import BACKENDS, add_option_flags, get_backend, options_from_args

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
    add_verbose_argument(p)
    add_option_flags(p, "build")
    return p


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    set_verbose(args.verbose)
    backend = get_backend(args.backend)
    options = options_from_args(args, backend, "build", args.options)
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
    return 0


if __name__ == "__main__":
    run(main)
