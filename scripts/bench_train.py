#!/usr/bin/env python
"""Training speed and memory: SPLADE-tiny on CPU, or an 8B-shaped SPLARE on a GPU.

Runs ``python -m pyserini_splare.train`` (the CLI, in a child process: what a user runs) for ``--steps`` optimizer
steps on synthetic FlagEmbedding data whose passages are long enough to be truncated at ``--max-length`` tokens
(queries are ~12 tokens), and reports, per batch size:

* seconds per step (median over the steps after the first, read from the trainer's own ``train_log.jsonl``),
  steps/s and tokens/s (query + passage tokens actually fed, counted with the model's tokenizer);
* peak memory: the child's peak RSS (``ru_maxrss``) on CPU; on a GPU the allocator's peak
  (``torch.cuda.max_memory_allocated``, recorded by the trainer in ``train_log.jsonl``).

CPU (the issue's SPLADE-tiny case, batch 16 x (1 query + 1 positive + 8 negatives) x 256 tokens)::

    python scripts/bench_train.py --encoder splade:PATH/TO/splade-tiny [--steps 4] [--threads 2]

GPU: ``--preset llama-8b`` builds a random Llama-3.1-8B-shaped trunk (hidden 4,096, MLP 14,336, 32/8 heads) cut
after block 26 and a 131,072-latent JumpReLU SAE (the SPLARE-7B shape; scripts/bench_encode_llm.py's builder,
random weights: speed only) and trains it with ``--recipe splare-7b`` (LoRA r 64 on q/k/v/o, SAE frozen, bf16,
gradient checkpointing, KL on random teacher scores) at 512 tokens::

    python scripts/bench_train.py --preset llama-8b --device cuda --batch-size 4,16 --steps 5

Prints one JSON line per batch size. Numbers in docs/benchmarks.md ("Training") and docs/training.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORDS = ("retrieval sparse lexical index query document model vector term weight learned encoder "
         "transformer attention layer token vocabulary expansion regularization latent autoencoder").split()


def synthetic(path: Path, n: int, negatives: int, passage_words: int, scores: bool, seed: int = 0) -> None:
    rng = random.Random(seed)

    def text(words: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(words))

    with open(path, "w", encoding="utf-8") as f:
        for _ in range(n):
            row = {"query": text(10), "pos": [text(passage_words)],
                   "neg": [text(passage_words) for _ in range(negatives)]}
            if scores:  # KL distillation needs teacher scores; random ones cost the same
                row["pos_scores"] = [rng.uniform(0.5, 1.0)]
                row["neg_scores"] = [rng.uniform(0.0, 0.5) for _ in range(negatives)]
            f.write(json.dumps(row) + "\n")


def token_counts(tokenizer_dir: str, data: Path, max_length: int, batch: int, negatives: int) -> tuple[float, float]:
    """Mean tokens per query and per passage as the trainer feeds them (truncated at max_length)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    rows = [json.loads(x) for x in data.read_text().splitlines()[:batch]]
    q = [len(tok(r["query"], truncation=True, max_length=max_length)["input_ids"]) for r in rows]
    d = [len(tok(t, truncation=True, max_length=max_length)["input_ids"]) for r in rows for t in r["pos"] + r["neg"]]
    return statistics.mean(q), statistics.mean(d)


PRESETS = {
    # Llama-3.1-8B's block shape, cut after block 26, Llama Scope's 131,072 latents: SPLARE-7B
    "llama-8b": dict(hidden=4096, intermediate=14336, heads=32, kv_heads=8, blocks=32, layer=26, latents=131072),
    # the same code path at a size a CPU runs in seconds (to check the script before spending GPU time)
    "llama-tiny": dict(hidden=64, intermediate=192, heads=4, kv_heads=2, blocks=3, layer=1, latents=512),
}


def build_random_splare(tmp: Path, preset: str, device: str, dtype: str, max_length: int) -> tuple[str, str]:
    """A random SPLARE checkpoint of the preset's shape: (encoder spec, tokenizer folder)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_encode_llm import build

    shape = argparse.Namespace(**PRESETS[preset], seed=0, dtype=dtype, device=device, no_full=True,
                               max_length=max_length)
    t0 = time.time()
    model_dir, ckpt = build(tmp, shape)
    print(f"built the random {preset} checkpoint in {time.time() - t0:.0f} s", file=sys.stderr)
    return f"splare:{ckpt}", str(model_dir)


def run(a, encoder: str, tok_dir: str | None, batch: int, tmp: Path, recipe: str, scores: bool) -> dict:
    data = tmp / f"train-{batch}.jsonl"
    synthetic(data, batch * (a.steps + 1), a.negatives, a.passage_words, scores)
    out = tmp / f"out-{batch}"
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "PYSERINI_SPLARE_PROGRESS": "0"}
    cmd = [sys.executable, "-m", "pyserini_splare.train", "--recipe", recipe, "--encoder", encoder,
           "--train-data", str(data), "--output", str(out), "--max-steps", str(a.steps), "--batch-size", str(batch),
           "--negatives", str(a.negatives), "--max-length", str(a.max_length), "--log-every", "1",
           "--save-steps", str(a.steps + 1), "--device", a.device]
    if a.dtype:
        cmd += ["--dtype", a.dtype]
    cmd += a.extra
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    wall = time.time() - t0
    if proc.returncode != 0:
        return {"batch_size": batch, "error": (proc.stderr or proc.stdout).strip().splitlines()[-1:],
                "stderr_tail": proc.stderr[-3000:]}
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    secs = statistics.median(r["seconds"] for r in log[1:]) if len(log) > 1 else log[0]["seconds"]
    q_tok, d_tok = token_counts(tok_dir or encoder.split(":", 1)[1], data, a.max_length, batch, a.negatives)
    tokens = batch * (q_tok + (1 + a.negatives) * d_tok)
    row = {"method": "CLI (python -m pyserini_splare.train), child process", "recipe": recipe, "device": a.device,
           "batch": f"{batch} x (1 + 1 + {a.negatives}) texts, max {a.max_length} tokens",
           "tokens_per_step": round(tokens), "query_tokens": round(q_tok, 1), "passage_tokens": round(d_tok, 1),
           "steps": a.steps, "seconds_per_step_median": round(secs, 3), "steps_per_s": round(1 / secs, 4),
           "tokens_per_s": round(tokens / secs, 1), "first_step_s": log[0]["seconds"],
           "wall_s_incl_load": round(wall, 1), "loss_first_last": [log[0]["loss"], log[-1]["loss"]]}
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    row["child_cpu_s_incl_load"] = round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1)
    row["extra_flags"] = " ".join(a.extra)
    if "gpu_peak_gib" in log[-1]:
        row["gpu_peak_gib"] = max(r["gpu_peak_gib"] for r in log)
    else:
        row["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    return row


def machine(device: str) -> dict:
    info = {"load_avg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
            "machine": platform.processor() or platform.machine()}
    if device.startswith("cuda"):
        import torch

        info["gpu"] = torch.cuda.get_device_name(0)
        info["torch"] = torch.__version__
    return info


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoder", help="encoder spec to train (the CPU case: splade:PATH); not with --preset")
    p.add_argument("--preset", choices=sorted(PRESETS), help="build a random SPLARE checkpoint of this shape "
                   "(llama-8b: SPLARE-7B's, for a GPU; llama-tiny: the same path on a CPU)")
    p.add_argument("--recipe", default=None, help="default: splade-tiny-cpu, or splare-7b with --preset")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--batch-size", default="16", help="queries per step; a comma list runs each (e.g. 4,16)")
    p.add_argument("--negatives", type=int, default=8)
    p.add_argument("--max-length", type=int, default=None, help="default 256 (CPU case) or 512 (--preset)")
    p.add_argument("--passage-words", type=int, default=None, help="default: long enough to truncate")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default=None, help="override the recipe's dtype")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (OMP_NUM_THREADS)")
    p.add_argument("--work", default=None, help="keep the work here (default: a temporary folder)")
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more flags for train (last), "
                   "e.g. --extra --grad-checkpointing")
    a = p.parse_args()
    if (a.encoder is None) == (a.preset is None):
        p.error("give --encoder SPEC or --preset NAME")
    a.max_length = a.max_length or (512 if a.preset else 256)
    a.passage_words = a.passage_words or int(a.max_length * 1.5)
    recipe = a.recipe or ("splare-7b" if a.preset else "splade-tiny-cpu")
    with tempfile.TemporaryDirectory(dir=a.work) as tmp:
        tmp = Path(tmp)
        if a.preset:
            built_dtype = "bf16" if a.device.startswith("cuda") else "fp32"
            encoder, tok_dir = build_random_splare(tmp, a.preset, a.device, built_dtype, a.max_length)
        else:
            encoder, tok_dir = a.encoder, None
        for batch in [int(b) for b in a.batch_size.split(",")]:
            # random teacher scores with a preset (splare-7b distils with KL); none for the contrastive CPU recipe
            row = run(a, encoder, tok_dir, batch, tmp, recipe, scores=a.preset is not None)
            print(json.dumps({**row, **machine(a.device)}), flush=True)


if __name__ == "__main__":
    main()
