"""python -m pyserini_splare.rerank: rerank the top of a TREC run with Qwen3-Reranker."""

from __future__ import annotations

import argparse
import contextlib
import sys

from .._argtypes import ArgumentParser, positive_int
from .._console import add_verbose_argument, set_verbose
from .._errors import UsageError, cli_main, run
from .._outputs import check_output_file
from ..distributed.cluster import add_ray_flags, check_ray_flags
from .qwen3 import DEFAULT_INSTRUCTION, DTYPES

EPILOG = f"""\
Each (query, document) pair of a query's top --depth hits is scored by the reranker's probability of
answering "yes" (Qwen3-Reranker's prompt; only the document is truncated to fit --max-length). Hits
below the depth keep their first-stage order beneath the reranked ones (scores -1, -2, ...).
Documents are read from --corpus (JSONL with id/title/text|contents, a folder of them, or
irds:<ir_datasets id>); the corpus is streamed once and only the needed texts are kept.

An interrupted run resumes: finished queries are kept in OUTPUT.partial.jsonl; rerun the same command.

examples:
  # WSDM Cup 2026 RUN3: Qwen3-Reranker-4B on the top 100 of RUN1, 2048 tokens, on a GPU
  python -m pyserini_splare.rerank --run runs/run1.txt --topics neuclir --corpus corpora/neuclir1.jsonl \\
      --model /models/Qwen3-Reranker-4B --depth 100 --max-length 2048 --device cuda:0 --batch-size 16 \\
      --output runs/run3.txt
  # a laptop check on 5 hits per query with the 0.6B model
  python -m pyserini_splare.rerank --run run.txt --topics topics.tsv --corpus docs.jsonl \\
      --model /models/Qwen3-Reranker-0.6B --depth 5 --output reranked.txt

Default instruction: "{DEFAULT_INSTRUCTION}".
"""


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m pyserini_splare.rerank", epilog=EPILOG,
                       description="Rerank a TREC run with Qwen3-Reranker (pointwise yes/no scoring).")
    p.add_argument("--run", required=True, help="TREC run to rerank")
    p.add_argument("--topics", required=True, help="topics name (e.g. neuclir) or file with the queries' text")
    p.add_argument("--corpus", required=True, help="documents: JSONL file/folder or irds:<id>")
    p.add_argument("--model", required=True, help="Qwen3-Reranker directory or hub id (e.g. Qwen/Qwen3-Reranker-4B)")
    p.add_argument("--output", required=True, help="reranked TREC run to write (atomically)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    p.add_argument("--depth", type=positive_int, default=100, help="hits per query to rerank (default 100)")
    p.add_argument("--max-length", type=positive_int, default=2048, help="max tokens per prompt, template included (default 2048)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="prompts per forward pass (default 8)")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda:0; default cpu)")
    p.add_argument("--dtype", default="auto", choices=DTYPES, help="weights dtype (auto = bf16 on CUDA, fp32 on CPU)")
    p.add_argument("--instruction", default=None, help="task instruction in the prompt (default: the model card's)")
    p.add_argument("--allow-short", action="store_true",
                   help="rerank queries with fewer hits than --depth instead of stopping with an error")
    p.add_argument("--run-tag", default=None, help="run tag (default: the model folder's name)")
    p.add_argument("--data-dir", default=None, help="folder with topics (default $PYSERINI_SPLARE_DATA)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow the model's own code (not needed for Qwen3)")
    add_ray_flags(p, "spread each query's pairs over Ray actors: local (start a cluster here), auto, HOST:PORT",
                  "actors, one loaded reranker each (default 1; with --ray local at most this machine's CPUs, else "
                  "refused)", "GPUs per actor (default 0: actors use --device)")
    add_verbose_argument(p, "Ray's and the JVM's own log lines")
    return p


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    set_verbose(args.verbose)
    check_ray_flags(args)
    check_output_file(args.output, overwrite=args.overwrite, what="--output")  # the one output rule (docs/errors.md)
    from ..formats.runs import read_trec_run
    from ..topics import get_topics
    from .rerank_run import check_depth, rerank_run, resume_settings, run_tag

    tag = run_tag(args.model, args.run_tag)
    first = read_trec_run(args.run)
    check_depth(first, args.depth, args.allow_short)
    topics = get_topics(args.topics, args.data_dir)

    from .qwen3 import Qwen3Reranker

    options = dict(device=args.device, dtype=args.dtype, max_length=args.max_length, instruction=args.instruction,
                   trust_remote_code=args.trust_remote_code)
    with contextlib.ExitStack() as stack:
        if args.ray is not None:
            from .on_ray import ray_reranker

            reranker = stack.enter_context(ray_reranker(args.ray, args.model, workers=args.ray_workers,
                                                        gpus_per_worker=args.ray_gpus_per_worker, **options))
        else:
            try:
                reranker = Qwen3Reranker(args.model, **options)
            except ValueError as e:
                raise UsageError(str(e)) from None
        n = rerank_run(first, topics, args.corpus,
                       lambda q, docs: reranker.score(q, docs, batch_size=args.batch_size),
                       args.depth, args.output, resume_settings(reranker.spec, args.depth, args.run), tag)
    print(f"reranked top {args.depth} of {len(first)} queries: {n} lines in {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run(main)
