#!/usr/bin/env python
"""Training speed and memory on CPU: SPLADE-tiny at batch 16 x (1 query + 1 positive + 8 negatives) x 256 tokens.

Runs ``python -m pyserini_splare.train`` (the CLI, in a child process: what a user runs) for ``--steps`` optimizer
steps on synthetic FlagEmbedding data whose passages are long enough to be truncated at ``--max-length`` tokens
(queries are ~12 tokens), and reports:

* seconds per step (median over the steps after the first, read from the trainer's own ``train_log.jsonl``),
  steps/s and document tokens/s;
* the child's peak RSS (``ru_maxrss`` of the only child process: the trainer).

    python scripts/bench_train.py --encoder splade:PATH/TO/splade-tiny [--steps 4] [--threads 2]

Prints one JSON line. Numbers in docs/benchmarks.md ("Training (CPU)").
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


def synthetic(path: Path, n: int, negatives: int, seed: int = 0) -> None:
    rng = random.Random(seed)

    def text(words: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(words))

    with open(path, "w", encoding="utf-8") as f:
        for _ in range(n):
            f.write(json.dumps({"query": text(10), "pos": [text(400)], "neg": [text(400) for _ in range(negatives)]})
                    + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoder", required=True)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--negatives", type=int, default=8)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (OMP_NUM_THREADS)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synthetic(tmp / "train.jsonl", a.batch_size * (a.steps + 1), a.negatives)
        env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "PYSERINI_SPLARE_PROGRESS": "0"}
        t0 = time.time()
        subprocess.run([sys.executable, "-m", "pyserini_splare.train", "--recipe", "splade-tiny-cpu", "--encoder",
                        a.encoder, "--train-data", str(tmp / "train.jsonl"), "--output", str(tmp / "out"),
                        "--max-steps", str(a.steps), "--batch-size", str(a.batch_size), "--negatives",
                        str(a.negatives), "--max-length", str(a.max_length), "--log-every", "1",
                        "--save-steps", str(a.steps + 1)], check=True, env=env, cwd=REPO)
        wall = time.time() - t0
        rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        log = [json.loads(x) for x in (tmp / "out" / "train_log.jsonl").read_text().splitlines()]
    secs = statistics.median(r["seconds"] for r in log[1:]) if len(log) > 1 else log[0]["seconds"]
    doc_tokens = a.batch_size * (1 + a.negatives) * a.max_length
    print(json.dumps({"method": "CLI (python -m pyserini_splare.train), child process", "threads": a.threads,
                      "batch": f"{a.batch_size} x (1 + 1 + {a.negatives}) texts x {a.max_length} tokens",
                      "steps": a.steps, "seconds_per_step_median": round(secs, 2),
                      "steps_per_s": round(1 / secs, 4), "doc_tokens_per_s": round(doc_tokens / secs, 1),
                      "first_step_s": log[0]["seconds"], "wall_s_incl_load": round(wall, 1),
                      "peak_rss_mb": round(rss_kb / 1024, 1), "load_avg_1m": os.getloadavg()[0],
                      "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine()}))


if __name__ == "__main__":
    main()
