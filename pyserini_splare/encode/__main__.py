"""python -m pyserini_splare.encode: encode a corpus into a vectors directory (sparse) or a dense one.

Argument parsing only: the run loop is :mod:`.pipeline`, the writer (parts, resume, pruning,
quantization) :class:`pyserini_splare.formats.vectors_writer.VectorsWriter`.
"""

from __future__ import annotations

import argparse
import os
import sys

from .._argtypes import (ArgumentParser, int_range, non_negative_float, non_negative_int, positive_float,
                         positive_int, unit_interval)
from .._console import add_verbose_argument, set_verbose
from .._errors import UsageError, cli_main, run
from .._outputs import check_output_dir
from ..distributed.cluster import add_ray_flags, check_ray_flags

EPILOG = """\
The output is a vectors directory: part-*.jsonl in Pyserini's JsonVectorCollection shape
({"id", "contents", "vector": {term: int}}) plus meta.json (encoder spec, feature space, quantization
scale, pooling, l0 statistics), ready for `python -m pyserini_splare.index`. A dense encoder
(qwen3-embed:...) writes part-*.ids.txt + part-*.npy instead, for `--backend faiss`.

examples:
  # SPLADE on a JSONL corpus ({"id", "title", "text"|"contents"} per line), all terms kept
  python -m pyserini_splare.encode --corpus corpus.jsonl --encoder splade:naver/splade-v3 \\
      --output vectors/splade --batch-size 32 --device cuda:0 --dtype bf16
  # SPLARE on NeuCLIR1 Persian through ir_datasets, Top-K pooled to 400 terms per document,
  # shard 3 of 8 (every 8th document, starting at the 4th): run one process per GPU
  python -m pyserini_splare.encode --corpus irds:neuclir/1/fa --encoder splare:ckpt/splare-7b \\
      --output vectors/fa.splare.3 --shard-id 3 --shard-num 8 --topk 400 --max-length 1024 --dtype bf16
  # prune an existing vectors directory to 400 terms per document, without re-encoding
  python -m pyserini_splare.encode --prune-from vectors/splare --topk 400 --output vectors/splare.top400
  # Qwen3-Embedding (dense; documents are embedded as plain text)
  python -m pyserini_splare.encode --corpus corpus.jsonl --encoder qwen3-embed:Qwen/Qwen3-Embedding-8B \\
      --output vectors/qwen3 --dtype bf16 --device cuda:0

Resuming: a killed run leaves OUTPUT.partial/ with every completed part and a checkpoint of the part
in progress (every --checkpoint-seconds); rerunning the same command skips them and produces
byte-identical output. Pruning: --topk keeps the k largest weights (the
seeds' pooled setting is 40 per query / 400 per document; 0 = no pooling); --mass keeps the fewest
largest weights holding that fraction of the vector's mass (MILCO). Encoder kinds: splade, splade-llm,
splare, milco, bge-m3, opensearch, onnx (an export: python -m pyserini_splare.export), qwen3-embed
(docs/encoders.md, docs/models.md).
"""

DEFAULT_PART_SIZE = 10_000  # = formats.vectors_writer.DEFAULT_PART_SIZE (not imported: --help stays light)
SLEEP_ENV = "PYSERINI_SPLARE_TEST_SLEEP"  # test-only: seconds to sleep after each batch (resume tests)


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="python -m pyserini_splare.encode", description="Encode a corpus into a vectors directory.",
        epilog=EPILOG)
    p.add_argument("--corpus", help="JSONL file or folder ({id, title?, text|contents}), irds:<ir_datasets id>, "
                                    "or a .tar.gz of HTML files (CACM)")
    p.add_argument("--encoder", metavar="SPEC",
                   help="KIND:PATH (splade, splade-llm, splare, milco, bge-m3, opensearch, onnx, qwen3-embed) or a "
                        "model directory whose config names its kind")
    p.add_argument("--prune-from", metavar="DIR", help="prune an existing vectors directory instead of encoding")
    p.add_argument("--output", help="output directory (built in OUTPUT.partial, renamed when complete)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    p.add_argument("--max-length", type=int_range(2), default=None,
                   help="max tokens per document (default: the model's own document length, e.g. 512 for BERT "
                        "SPLADE, 1024 for SPLARE checkpoints, 512 for MILCO, 8192 for Qwen3-Embedding; BERT models "
                        "are clamped to 512); recorded in meta.json's encoder spec under 'overrides'")
    p.add_argument("--batch-size", type=positive_int, default=32, help="documents per forward pass (default 32)")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:0 (default cpu)")
    p.add_argument("--dtype", default=None, choices=["bf16", "fp16", "fp32"],
                   help="model weights and activations dtype (default: fp32 for BERT models, bf16 is the usual "
                        "choice for 7-8B trunks on GPU)")
    p.add_argument("--shard-id", type=int, default=0, help="this shard (0-based) of --shard-num (default 0)")
    p.add_argument("--shard-num", type=positive_int, default=1, help="number of shards: shard i encodes documents "
                                                            "i, i+n, i+2n, ... of the corpus (default 1)")
    p.add_argument("--topk", type=non_negative_int, default=0, help="Top-K pooling: keep the k largest weights per document "
                                                       "(seeds: 400 per document, 40 per query); 0 keeps all (default)")
    p.add_argument("--mass", type=unit_interval, default=None, help="mass pruning (MILCO): keep the fewest largest weights "
                                                            "summing to this fraction (0, 1] of the vector's total")
    p.add_argument("--quant-scale", type=positive_float, default=None,
                   help="integer weights = round(w * scale) (default 100; --prune-from keeps the source's)")
    p.add_argument("--part-size", type=positive_int, default=DEFAULT_PART_SIZE,
                   help=f"documents per part file, the unit of resuming (default {DEFAULT_PART_SIZE:,})")
    p.add_argument("--checkpoint-seconds", type=non_negative_float, default=60.0,
                   help="save the part being written at least this often (default 60), so a kill loses minutes of "
                        "work, not a part; 0 checkpoints only at part ends")
    p.add_argument("--trust-remote-code", action="store_true", help="allow the model's own code (MILCO needs it)")
    add_ray_flags(p, "encode on a Ray cluster: local (start one here), auto, HOST:PORT or ray://HOST:PORT; parts are "
                     "written by the workers into OUTPUT.partial (a shared filesystem on a cluster)",
                  "encoder actors, one loaded model each (default 1; with --ray local at most this machine's CPUs / "
                  "--ray-cpus-per-worker, else refused)", "GPUs per actor (default 0: CPU actors on --device)")
    add_verbose_argument(p, "Ray's and the JVM's own log lines")
    return p


def _check_args(args) -> None:
    if not args.output:
        raise UsageError("--output is required (see --help)")
    if args.prune_from:
        if args.ray is not None:
            raise UsageError("--ray encodes a corpus; --prune-from runs in one process (it is I/O, not model, work)")
        if args.corpus or args.encoder:
            raise UsageError("--prune-from rewrites an existing vectors directory: do not give --corpus/--encoder")
        if args.topk <= 0 and args.mass is None:
            raise UsageError("--prune-from needs --topk K (> 0) and/or --mass M")
    else:
        for flag in ("corpus", "encoder"):
            if not getattr(args, flag):
                raise UsageError(f"--{flag} is required (see --help)")
    if not 0 <= args.shard_id < args.shard_num:
        raise UsageError(f"--shard-id must be in [0, --shard-num), got {args.shard_id} of {args.shard_num}")


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    set_verbose(args.verbose)
    _check_args(args)
    check_ray_flags(args)
    from .preflight import preflight

    preflight(args)  # every input that can be checked, before a corpus download or a model load
    from ..formats.quant import DEFAULT_QUANT_SCALE
    from ..formats.vectors_meta import read_meta
    from .pipeline import Settings, corpus_fingerprint, encode_to_dir, peek, prune_to_dir, text_source

    out = check_output_dir(args.output, overwrite=args.overwrite)  # before a model is loaded
    settings = Settings(shard_id=args.shard_id, shard_num=args.shard_num, part_size=args.part_size,
                        batch_size=args.batch_size, sleep=float(os.environ.get(SLEEP_ENV, "0") or 0),
                        checkpoint_seconds=args.checkpoint_seconds)
    if args.prune_from:
        smeta = read_meta(args.prune_from, "sparse")
        if args.quant_scale is not None and args.quant_scale != smeta.quant_scale:
            raise UsageError(f"--prune-from keeps the source's quantization scale ({smeta.quant_scale:g}); "
                             f"re-quantizing at {args.quant_scale:g} would round twice")
        meta, _ = prune_to_dir(out, args.prune_from, settings, topk=args.topk, mass=args.mass,
                               overwrite=args.overwrite)
    else:
        from . import load_encoder, resolve_spec

        resolve_spec(args.encoder)  # a bad spec fails before the corpus or the model is touched
        # Peek at the first document before loading a multi-GB model: a bad corpus fails fast.
        source = peek(text_source(args.corpus, announce=True))
        options = dict(device=args.device, dtype=args.dtype, max_length_doc=args.max_length,
                       trust_remote_code=args.trust_remote_code, batch_size=args.batch_size)
        config = {**corpus_fingerprint(args.corpus), "encoder": args.encoder, "max_length": args.max_length,
                  "batch_size": args.batch_size, "dtype": args.dtype, "device_type": args.device.split(":")[0]}
        scale = float(args.quant_scale if args.quant_scale is not None else DEFAULT_QUANT_SCALE)
        if args.ray is not None:  # same output and resume state, encoded by Ray actors (distributed/encode.py)
            from .on_ray import encode_on_ray

            meta, _ = encode_on_ray(args.ray, out, args.corpus, args.encoder, settings, encoder_options=options,
                                    config=config, quant_scale=scale, topk=args.topk, mass=args.mass,
                                    overwrite=args.overwrite, workers=args.ray_workers,
                                    gpus_per_worker=args.ray_gpus_per_worker)
        else:
            from ..corpus import count_documents

            settings.count = lambda: count_documents(args.corpus)  # the progress bar's total (and ETA)
            encoder = load_encoder(args.encoder, **options)
            meta, _ = encode_to_dir(out, args.corpus, encoder, args.encoder, settings, config=config,
                                    quant_scale=scale, topk=args.topk, mass=args.mass, overwrite=args.overwrite,
                                    source=source)
    print(f"wrote {out}: {_summary(meta)}", file=sys.stderr)
    return 0


def _summary(meta) -> str:
    if meta.kind == "dense":
        return f"{meta.count:,} embeddings of dimension {meta.dim}"
    st = meta.stats
    l0, q = st["l0"], st["quantization"]
    from ..formats.quant import quant_summary

    out = (f"{st['documents']:,} documents, mean active features {l0['before_pruning_mean']:.1f} before pruning, "
           f"{l0['after_pruning_mean']:.1f} after; {quant_summary(q)}")
    if st["empty_after_quantization"]:
        out += f"; {st['empty_after_quantization']} documents left out (no weight survived quantization)"
    return out


if __name__ == "__main__":
    run(main)
