"""Train a sparse encoder: ``python -m pyserini_splare.train --encoder SPEC --train-data FILE --output DIR``."""

from __future__ import annotations

import sys

from .._errors import cli_main, run
from .config import recipe_names

EXAMPLE = """\
worked example (CPU, CACM; docs/training.md):
  python -m pyserini_splare.testing.cacm_pairs $PYSERINI_SPLARE_DATA/cacm/cacm.tar.gz cacm
  python -m pyserini_splare.index --backend bm25 --input cacm/corpus --index cacm/bm25
  python -m pyserini_splare.train.data --queries cacm/train_queries.tsv --corpus cacm/corpus \\
      --positives cacm/train_pairs.tsv --index cacm/bm25 --negatives 4 --depth 50 --output cacm/train.jsonl
  python -m pyserini_splare.train --recipe splade-tiny-cpu --encoder splade:PATH/TO/splade-tiny \\
      --train-data cacm/train.jsonl --max-steps 300 --output splade-tiny-cacm \\
      --dev-topics cacm/heldout_queries.tsv --dev-qrels cacm/heldout_qrels.txt --dev-corpus cacm/corpus
  python -m pyserini_splare.encode --encoder splade:splade-tiny-cacm ...     # the output is an encoder spec

SPLARE-7B on 8 GPUs:
  torchrun --nproc_per_node 8 -m pyserini_splare.train --recipe splare-7b --encoder splare:CKPT \\
      --train-data train.jsonl --output splare-7b-trained
  resume after an interruption (the same command + --resume; dev settings may change):
  ... --output splare-7b-trained --resume
  pooled variant (Top-K 40/400 in training, as the SPLARE paper's pooled models; encode then applies it):
  ... --recipe splare-7b --topk-query 40 --topk-doc 400 ...
recipes: """


def build_parser():
    """One flag per TrainConfig field (transformers' HfArgumentParser, :mod:`.arguments`)."""
    from .arguments import make_parser
    from .config import TrainConfig

    return make_parser(TrainConfig, prog="python -m pyserini_splare.train", description=__doc__,
                       epilog=EXAMPLE + ", ".join(recipe_names()))


@cli_main
def main(argv=None):
    from .config import parse_config

    cfg = parse_config(build_parser(), argv)
    from .engine import train

    summary = train(cfg)
    print(f"trained {summary['steps']} steps ({summary['loss_line']}): {summary['output']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run(main)
