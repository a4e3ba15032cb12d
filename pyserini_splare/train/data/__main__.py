"""Mine training data: ``python -m pyserini_splare.train.data --queries Q --corpus C --qrels R --index IDX ...``."""

from __future__ import annotations

import argparse
import sys

from ..._errors import cli_main, run
from ..._outputs import check_output_file

EXAMPLE = """\
example (CACM titles as queries, their abstracts as positives, BM25 hard negatives):
  python -m pyserini_splare.index --backend bm25 --input abstracts/ --index bm25-abstracts
  python -m pyserini_splare.train.data --queries titles.tsv --corpus abstracts/ --positives pairs.tsv \\
      --index bm25-abstracts --negatives 8 --depth 100 --output train.jsonl
With a learned sparse index add --encoder splade:DIR; with teacher scores add
--teacher rerank:Qwen/Qwen3-Reranker-0.6B (or cross-encoder:PATH, encoder:splade:DIR).
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pyserini_splare.train.data", description=__doc__, epilog=EXAMPLE,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--queries", required=True, help="topics: registered name or file (TSV qid<TAB>text, TREC, CACM)")
    p.add_argument("--corpus", required=True, help="documents (JSONL file/folder, irds:ID, HTML .tar.gz)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--qrels", help="TREC qrels (name or file): documents graded > 0 are positives")
    g.add_argument("--positives", help="file of 'qid docid' lines: the positives")
    p.add_argument("--index", required=True, help="an index of this toolkit over --corpus (bm25, lucene, seismic, "
                                                  "exact, faiss)")
    p.add_argument("--encoder", default=None, help="query encoder SPEC for learned-sparse or dense indexes")
    p.add_argument("--negatives", type=int, default=8, help="hard negatives kept per query (default 8)")
    p.add_argument("--depth", type=int, default=100, help="negatives are drawn from the top DEPTH non-positive hits")
    p.add_argument("--teacher", default=None, help="teacher scores: rerank:MODEL | cross-encoder:PATH | encoder:SPEC")
    p.add_argument("--prompt", default=None, help="instruction stored as each line's 'prompt' (prepended to queries)")
    p.add_argument("--seed", type=int, default=0, help="seed of the negative sampling")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir", default=None, help="folder of registered topics and qrels")
    p.add_argument("--output", required=True, help="training JSONL to write (atomically)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    return p


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    check_output_file(args.output, overwrite=args.overwrite, what="--output")  # the one output rule (docs/errors.md)
    from ...topics import get_topics
    from ..mining import mine, positives_from_qrels, read_positives

    queries = get_topics(args.queries, args.data_dir)
    positives = positives_from_qrels(args.qrels, args.data_dir) if args.qrels else read_positives(args.positives)
    c = mine(queries, positives, args.corpus, args.index, args.output, negatives=args.negatives, depth=args.depth,
             encoder=args.encoder, teacher=args.teacher, seed=args.seed, device=args.device, threads=args.threads,
             prompt=args.prompt)
    print(f"wrote {c['written']} training lines of {c['queries']} queries with positives to {args.output}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    run(main)
