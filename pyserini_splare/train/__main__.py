"""Train a sparse encoder: ``python -m pyserini_splare.train --encoder SPEC --train-data FILE --output DIR``."""

from __future__ import annotations

import argparse
import sys
import typing
from dataclasses import MISSING, fields

from .._errors import cli_main, run
from .config import TrainConfig, recipe_names

EXAMPLE = """\
worked example (CPU, CACM; docs/training.md):
  python scripts/cacm_title_abstract.py ../shared/data/cacm/cacm.tar.gz cacm
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
  pooled variant (Top-K 40/400 in training, as the SPLARE paper's pooled models; encode then applies it):
  ... --recipe splare-7b --topk-query 40 --topk-doc 400 ...
recipes: """


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pyserini_splare.train", description=__doc__,
                                epilog=EXAMPLE + ", ".join(recipe_names()),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    hints = typing.get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not MISSING else None
        help_ = f.metadata["help"] + (f" (default {default})" if default not in (None, False) else "")
        if hints[f.name] is bool:
            p.add_argument(flag, action="store_true", default=None, help=help_)
        elif f.metadata.get("nargs"):
            p.add_argument(flag, nargs=f.metadata["nargs"], default=None, help=help_)
        else:
            typ = next((t for t in (int, float, str) if t in typing.get_args(hints[f.name]) or hints[f.name] is t), str)
            p.add_argument(flag, type=typ, default=None, help=help_)
    return p


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    from .config import make_config
    from .engine import train

    cfg, _ = make_config(vars(args))
    summary = train(cfg)
    print(f"trained {summary['steps']} steps (mean loss {summary['train_loss']:.4f}): {summary['output']}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    run(main)
