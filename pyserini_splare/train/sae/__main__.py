"""Train a TopK SAE on a trunk's residual stream and write a SPLARE checkpoint around it."""

from __future__ import annotations

import sys

from ..._errors import UsageError, cli_main, run
from ..._outputs import check_output_dir

EXAMPLE = """\
example (a SPLARE on SPLADE-tiny's BERT trunk, SAE trained on CACM abstracts):
  python -m pyserini_splare.train.sae --backbone $SPLADE_TINY --layer 1 --corpus cacm/corpus \\
      --latents 4096 --k 32 --steps 2000 --output splare-tiny
  python -m pyserini_splare.train --recipe splade-tiny-cpu --encoder splare:splare-tiny ...
A corpus giving fewer than 10 training tokens per latent gets a warning; fewer than 20 tokens is refused.
"""


def build_parser():
    """One flag per SaeTrainingConfig field (transformers' HfArgumentParser, :mod:`..arguments`)."""
    from ..arguments import make_parser
    from ..sae_training import SaeTrainingConfig

    return make_parser(SaeTrainingConfig, prog="python -m pyserini_splare.train.sae", description=__doc__,
                       epilog=EXAMPLE)


@cli_main
def main(argv=None):
    from ..arguments import parse

    args = parse(build_parser(), argv)
    args.validate()
    check_output_dir(args.output, overwrite=args.overwrite, what="--output")  # the one output rule, before any work
    from ...corpus import open_corpus
    from ...encode.modules.trunk import cut_config, load_config
    from ..sae_training import train_sae

    cut_config(load_config(args.backbone), args.layer)  # the backbone and --layer, before the corpus is read
    texts = []
    for doc in open_corpus(args.corpus):
        texts.append(doc.text)
        if len(texts) * 16 >= args.max_tokens:  # enough texts for max_tokens even at 16 tokens each
            break
    if not texts:
        raise UsageError(f"--corpus {args.corpus} holds no documents")
    r = train_sae(args.backbone, args.layer, texts, args.output, n_latents=args.latents, k=args.k, steps=args.steps,
                  lr=args.lr, max_tokens=args.max_tokens, max_length=args.max_length, attention=args.attention,
                  seed=args.seed, device=args.device, overwrite=args.overwrite)
    print(f"SAE {args.latents} latents, k={args.k}, on {r['tokens']} tokens: held-out FVU {r['fvu_dev']:.3f}; "
          f"SPLARE checkpoint in {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run(main)
