"""Train a TopK SAE on a trunk's residual stream and write a SPLARE checkpoint around it."""

from __future__ import annotations

import argparse
import sys

from ..._errors import UsageError, cli_main, run

EXAMPLE = """\
example (a SPLARE on SPLADE-tiny's BERT trunk, SAE trained on CACM abstracts):
  python -m pyserini_splare.train.sae --backbone $SPLADE_TINY --layer 1 --corpus cacm/corpus \\
      --latents 4096 --k 32 --steps 2000 --output splare-tiny
  python -m pyserini_splare.train --recipe splade-tiny-cpu --encoder splare:splare-tiny ...
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pyserini_splare.train.sae", description=__doc__, epilog=EXAMPLE,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", required=True, help="HF model folder or hub id of the trunk")
    p.add_argument("--layer", type=int, required=True, help="0-indexed block whose output the SAE reads")
    p.add_argument("--corpus", required=True, help="texts whose activations train it (JSONL, irds:ID, .tar.gz)")
    p.add_argument("--latents", type=int, default=4096, help="SAE width (default 4096)")
    p.add_argument("--k", type=int, default=32, help="TopK's k (default 32)")
    p.add_argument("--steps", type=int, default=2000, help="Adam steps over batches of 1,024 tokens")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--max-tokens", type=int, default=200_000, help="activations kept (tokens)")
    p.add_argument("--max-length", type=int, default=256, help="tokens per text")
    p.add_argument("--attention", default=None, choices=["causal", "bidirectional"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--output", required=True, help="SPLARE checkpoint directory to write")
    return p


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    for name in ("latents", "k", "steps", "max_tokens", "max_length"):
        if getattr(args, name) <= 0:
            raise UsageError(f"--{name.replace('_', '-')} must be positive")
    from ...corpus import open_corpus
    from ..sae_training import train_sae

    texts = []
    for doc in open_corpus(args.corpus):
        texts.append(doc.text)
        if len(texts) * 16 >= args.max_tokens:  # enough texts for max_tokens even at 16 tokens each
            break
    r = train_sae(args.backbone, args.layer, texts, args.output, n_latents=args.latents, k=args.k, steps=args.steps,
                  lr=args.lr, max_tokens=args.max_tokens, max_length=args.max_length, attention=args.attention,
                  seed=args.seed, device=args.device)
    print(f"SAE {args.latents} latents, k={args.k}, on {r['tokens']} tokens: held-out FVU {r['fvu_dev']:.3f}; "
          f"SPLARE checkpoint in {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run(main)
