"""Throughput of the faiss backend and of the Qwen3-Reranker path on CPU, with synthetic inputs.

    python scripts/bench_rerank_faiss.py [--docs 100000 --dim 256 --queries 200 --threads 2]
        [--pairs 64 --doc-tokens 400 --hidden 256 --layers 4]

faiss: build time and ms/query for flat, HNSW and IVF, recall@10 against flat, on clustered
synthetic unit vectors (500 centres + Gaussian noise; unstructured random vectors are the worst case
for approximate indexes, real embeddings are clustered).
Dense encoder: docs/second of the Qwen3-Embedding encoder on a random Qwen3-shaped model.
Reranker: pairs/second for a random-weight Qwen3-shaped model (--hidden/--layers) through
``Qwen3Reranker.score`` (tokenize, length-sorted batches, left padding, yes/no softmax). Prints
tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def bench_faiss(args):
    from pyserini_splare.index.faiss import build_faiss_index
    from pyserini_splare.search.faiss import FaissSearcher

    rng = np.random.default_rng(0)
    # clustered like real embeddings: 500 topic centres, each vector = centre + noise, unit norm
    centres = rng.standard_normal((500, args.dim)).astype(np.float32)
    x = centres[rng.integers(0, 500, args.docs)] + 0.7 * rng.standard_normal((args.docs, args.dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = centres[rng.integers(0, 500, args.queries)] + 0.7 * rng.standard_normal((args.queries, args.dim)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    queries = {f"q{i}": q[i] for i in range(args.queries)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        vec = Path(tmp) / "vec"
        vec.mkdir()
        step = 50_000
        for p, s in enumerate(range(0, args.docs, step)):
            (vec / f"part-{p:05d}.ids.txt").write_text("".join(f"d{i}\n" for i in range(s, min(s + step, args.docs))))
            np.save(vec / f"part-{p:05d}.npy", x[s:s + step])
        (vec / "meta.json").write_text(json.dumps({"format": "pyserini_splare.dense/1", "dim": args.dim,
                                                   "count": args.docs, "encoder": {}, "normalized": True}))
        ref = None
        configs = [("flat", {}), ("hnsw M=32 efC=64 efS=128", {"type": "hnsw", "M": 32, "efConstruction": 64}),
                   ("ivf nlist=256 nprobe=16", {"type": "ivf", "nlist": 256, "nprobe": 16}),
                   ("ivf-pq nlist=256 nprobe=16 m=32", {"type": "ivf", "nlist": 256, "nprobe": 16, "pq": 32})]
        for name, opts in configs:
            out = Path(tmp) / name.split()[0]
            t0 = time.perf_counter()
            build_faiss_index(str(vec), str(out), threads=args.threads, **opts)
            build = time.perf_counter() - t0
            s = FaissSearcher(out)
            t0 = time.perf_counter()
            res = s.batch_search(queries, k=10, threads=args.threads)
            ms = (time.perf_counter() - t0) * 1000 / args.queries
            if ref is None:
                ref = res
            recall = np.mean([len({d for d, _ in res[k]} & {d for d, _ in ref[k]}) / 10 for k in queries])
            size = (out / "index.faiss").stat().st_size / 2**20
            rows.append((name, build, ms, recall, size))
    print(f"\nfaiss: {args.docs} x {args.dim} fp32, {args.queries} queries, k=10, {args.threads} threads")
    print(f"{'index':<34}{'build s':>9}{'ms/query':>10}{'R@10 vs flat':>14}{'MiB':>9}")
    for name, build, ms, recall, size in rows:
        print(f"{name:<34}{build:>9.1f}{ms:>10.3f}{recall:>14.3f}{size:>9.1f}")


def _shape(args) -> dict:
    """Qwen3's proportions at ``--hidden``: heads of 64 dimensions, 2 query heads per key/value head."""
    return dict(hidden=args.hidden, intermediate=3 * args.hidden, layers=args.layers, heads=max(1, args.hidden // 64),
                kv_heads=max(1, args.hidden // 128), head_dim=64, max_positions=4096)


def bench_rerank(args):
    import torch

    from pyserini_splare.rerank import Qwen3Reranker
    from pyserini_splare.testing.tiny_models import qwen3_reranker

    torch.set_num_threads(args.threads)
    words = [f"w{i}" for i in range(2000)]
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        qwen3_reranker(tmp, [" ".join(words)] * 3, vocab_size=4000, **_shape(args))
        r = Qwen3Reranker(tmp, max_length=2048)
        docs = []
        for _ in range(args.pairs):  # varied lengths, so length sorting matters
            n = int(rng.integers(args.doc_tokens // 2, args.doc_tokens * 3 // 2))
            docs.append(" ".join(rng.choice(words, n)))
        print(f"\nreranker: Qwen3-shaped hidden={args.hidden} layers={args.layers} "
              f"({sum(p.numel() for p in r.model.parameters()) / 1e6:.1f}M params), {args.pairs} pairs, "
              f"~{args.doc_tokens} words/doc, fp32, {args.threads} threads")
        print(f"{'batch':>6}{'pairs/s':>10}")
        r.score("w1 w2 w3", docs[:4], batch_size=4)  # warm-up
        for bs in (1, 8, 16):
            t0 = time.perf_counter()
            r.score("w1 w2 w3 w4", docs, batch_size=bs)
            print(f"{bs:>6}{args.pairs / (time.perf_counter() - t0):>10.1f}")


def bench_dense_encode(args):
    """Qwen3-Embedding encoder path (pyserini_splare.encode.dense) on a random Qwen3-shaped model: docs/s."""
    import torch

    from pyserini_splare.encode import load_encoder
    from pyserini_splare.testing.tiny_models import qwen3_embedder

    torch.set_num_threads(args.threads)
    words = [f"w{i}" for i in range(2000)]
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        qwen3_embedder(tmp, [" ".join(words)], **_shape(args))
        enc = load_encoder(f"qwen3-embed:{tmp}")
        docs = [" ".join(rng.choice(words, int(rng.integers(args.doc_tokens // 2, args.doc_tokens * 3 // 2))))
                for _ in range(args.pairs)]
        enc.encode(docs[:2], "doc")  # warm-up
        print(f"\ndense encoder: Qwen3-shaped hidden={args.hidden} layers={args.layers}, {args.pairs} docs of "
              f"~{args.doc_tokens} tokens (word-level), fp32, {args.threads} threads")
        print(f"{'batch':>6}{'docs/s':>10}")
        for bs in (1, 8, 16):
            t0 = time.perf_counter()
            for i in range(0, len(docs), bs):
                enc.encode(docs[i:i + bs], "doc")
            print(f"{bs:>6}{len(docs) / (time.perf_counter() - t0):>10.1f}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--docs", type=int, default=50_000)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--pairs", type=int, default=64)
    p.add_argument("--doc-tokens", type=int, default=400)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--only", choices=["faiss", "rerank", "dense"], default=None, help="run one part")
    args = p.parse_args()
    for name, fn in (("faiss", bench_faiss), ("rerank", bench_rerank), ("dense", bench_dense_encode)):
        if args.only in (None, name):
            fn(args)


if __name__ == "__main__":
    main()
