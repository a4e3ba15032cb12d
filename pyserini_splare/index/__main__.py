"""python -m pyserini_splare.index: build an index from a vectors directory (or BM25 from raw text)."""

from __future__ import annotations

import argparse
import json

from .._cli import cli_main, run
from ._meta import BUILDERS

EPILOG = """\
backends:
  lucene   Lucene impact index of a vectors directory (Anserini, embedded; exact dot products)
  seismic  Seismic approximate index of a vectors directory (fast approximate search; SeismicIndexLV above 65,535 features)
  exact    brute-force sparse index (scipy CSR): the reference approximate backends are measured against
  faiss    dense embeddings (Qwen3-Embedding) with faiss
  bm25     BM25 over raw text in an Anserini collection class (JsonCollection, HtmlCollection, ...)

examples:
  python -m pyserini_splare.index --backend lucene --input vectors/splare --index indexes/splare.lucene --threads 8
  python -m pyserini_splare.index --backend bm25 --collection HtmlCollection \\
      --input ../shared/data/cacm --index indexes/cacm.bm25
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pyserini_splare.index",
        description="Build an index. The backend, the vectors' feature space and quantization scale are "
                    "recorded in the index, so `python -m pyserini_splare.search` needs only --index.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", required=True, choices=list(BUILDERS), help="index type (see below)")
    p.add_argument("--input", required=True, help="vectors directory written by `encode` (or, for bm25, a collection folder)")
    p.add_argument("--index", required=True, help="output index directory (must not exist unless --overwrite)")
    p.add_argument("--threads", type=int, default=1, help="indexing threads (default 1)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing index directory")
    p.add_argument("--optimize", action="store_true", help="lucene/bm25: merge into one segment (slower build, faster search)")
    p.add_argument("--no-validate", dest="validate", action="store_false",
                   help="lucene: skip the streaming check of every vector before indexing")
    p.add_argument("--collection", default="JsonCollection", help="bm25: Anserini collection class (default JsonCollection)")
    p.add_argument("--language", default=None, help="bm25: Anserini analyzer language (e.g. zh, fa, ru; default English)")
    p.add_argument("--options", default=None, metavar="JSON",
                   help="backend-specific build options as a JSON object (see docs/indexing.md)")
    p.add_argument("--java-heap", default=None, help="JVM heap for Lucene backends (default 4g or $PYSERINI_SPLARE_JAVA_HEAP)")
    return p


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    from .._cli import UsageError

    if args.threads < 1:
        raise UsageError("--threads must be >= 1")
    extra = {}
    if args.options:
        try:
            extra = json.loads(args.options)
        except json.JSONDecodeError as e:
            raise UsageError(f"--options is not valid JSON: {e}") from None
        if not isinstance(extra, dict):
            raise UsageError("--options must be a JSON object")
    if args.java_heap and args.backend in ("lucene", "bm25"):
        from .._java import start_jvm

        start_jvm(args.java_heap)
    from . import build_index

    meta = build_index(args.backend, args.input, args.index, threads=args.threads, overwrite=args.overwrite,
                       optimize=args.optimize, validate=args.validate, collection=args.collection,
                       language=args.language, **extra)
    build = meta.get("build", {})
    print(f"built {args.backend} index {args.index}: " + ", ".join(f"{k}={v}" for k, v in build.items()))
    return 0


if __name__ == "__main__":
    run(main)
