"""Mine training data: ``python -m pyserini_splare.train.data --queries Q --corpus C --qrels R --index IDX ...``."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from ..._errors import UsageError, cli_main, run
from ..._outputs import check_output_file
from ..arguments import setting as _f

EXAMPLE = """\
example (CACM titles as queries, their abstracts as positives, BM25 hard negatives):
  python -m pyserini_splare.index --backend bm25 --input abstracts/ --index bm25-abstracts
  python -m pyserini_splare.train.data --queries titles.tsv --corpus abstracts/ --positives pairs.tsv \\
      --index bm25-abstracts --negatives 8 --depth 100 --output train.jsonl
With a learned sparse index add --encoder splade:DIR; with teacher scores add
--teacher rerank:Qwen/Qwen3-Reranker-0.6B (or cross-encoder:PATH, encoder:splade:DIR).
"""


@dataclass(kw_only=True)  # keyword-only: the required --index and --output may follow defaulted flags
class MiningSettings:
    """``python -m pyserini_splare.train.data``'s settings (flags through HfArgumentParser, :mod:`..arguments`)."""

    queries: str = _f(help="topics: registered name or file (TSV qid<TAB>text, TREC, CACM)")
    corpus: str = _f(help="documents (JSONL file/folder, irds:ID, HTML .tar.gz)")
    qrels: str | None = _f(None, "TREC qrels (name or file): documents graded > 0 are positives")
    positives: str | None = _f(None, "file of 'qid docid' lines: the positives (one of --qrels, --positives)")
    index: str = _f(help="an index of this toolkit over --corpus (bm25, lucene, seismic, exact, faiss)")
    encoder: str | None = _f(None, "query encoder SPEC for learned-sparse or dense indexes")
    negatives: int = _f(8, "hard negatives kept per query")
    depth: int = _f(100, "negatives are drawn from the top DEPTH non-positive hits")
    teacher: str | None = _f(None, "teacher scores: rerank:MODEL | cross-encoder:PATH | encoder:SPEC")
    prompt: str | None = _f(None, "instruction stored as each line's 'prompt' (prepended to queries)")
    seed: int = _f(0, "seed of the negative sampling")
    device: str = _f("cpu")
    threads: int = _f(1)
    data_dir: str | None = _f(None, "folder of registered topics and qrels")
    output: str = _f(help="training JSONL to write (atomically)")
    overwrite: bool = _f(False, "replace an existing --output file")


def build_parser():
    """One flag per MiningSettings field (transformers' HfArgumentParser, :mod:`..arguments`)."""
    from ..arguments import make_parser

    return make_parser(MiningSettings, prog="python -m pyserini_splare.train.data", description=__doc__,
                       epilog=EXAMPLE)


@cli_main
def main(argv=None):
    from ..arguments import parse

    args = parse(build_parser(), argv)
    if (args.qrels is None) == (args.positives is None):  # argparse's words for its mutually exclusive groups
        raise UsageError("argument --positives: not allowed with argument --qrels (see --help)" if args.qrels else
                         "one of the arguments --qrels --positives is required (see --help)")
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
