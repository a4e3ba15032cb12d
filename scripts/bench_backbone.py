#!/usr/bin/env python
"""Benchmark the backbone: streaming memory of writing vectors and building a Lucene impact index,
and the overhead of our batch search over calling Anserini's SimpleImpactSearcher directly.

Prints numbers and ratios (no pass/fail). Each measurement runs in its own process so peak RSS
(``ru_maxrss``) belongs to that step alone.

    python scripts/bench_backbone.py write  --docs 100000 --out /tmp/bb/vec100k
    python scripts/bench_backbone.py index  --vectors /tmp/bb/vec100k --out /tmp/bb/idx100k --threads 2
    python scripts/bench_backbone.py search --index /tmp/bb/idx100k --queries 2000 --threads 2
    python scripts/bench_backbone.py read   --vectors /tmp/bb/vec100k --parts 1
    python scripts/bench_backbone.py all    --sizes 100000 1000000 --index-sizes 20000 100000 --workdir /tmp/bb

Documents are SPLARE-shaped: 131,072 features, ~400 terms per document (Top-K 400 pooling), feature
popularity Zipf-like (a few latents fire often, most rarely), weights log1p-like in (0, ~4].
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time

import numpy as np

N_FEATURES = 131_072


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _feature_sampler(rng):
    # Zipf-like popularity over a random permutation of the features.
    ranks = np.arange(1, N_FEATURES + 1, dtype=np.float64)
    p = 1.0 / ranks ** 0.8
    p /= p.sum()
    perm = rng.permutation(N_FEATURES)
    cdf = np.cumsum(p)
    return perm, cdf


def _doc(rng, perm, cdf, n_terms):
    idx = np.unique(np.searchsorted(cdf, rng.random(int(n_terms * 1.3))))
    idx = np.minimum(idx, N_FEATURES - 1)[:n_terms]
    ids = perm[idx]
    w = np.log1p(rng.gamma(1.5, 1.5, size=ids.size)).astype(np.float32) + 0.01
    return ids, w


def cmd_write(args):
    from pyserini_splare.vectors import PrefixedSpace, SparseVector, VectorsWriter

    rng = np.random.default_rng(args.seed)
    perm, cdf = _feature_sampler(rng)
    if os.path.exists(args.out):
        shutil.rmtree(args.out)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    t0 = time.time()
    with VectorsWriter(args.out, PrefixedSpace("L", N_FEATURES), args.scale) as w:
        for i in range(args.docs):
            ids, wts = _doc(rng, perm, cdf, int(rng.integers(300, 500)))
            w.write(f"d{i}", SparseVector(ids, wts))
    secs = time.time() - t0
    size = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print(json.dumps({"step": "write", "docs": args.docs, "seconds": round(secs, 1),
                      "docs_per_s": round(args.docs / secs), "disk_mb": round(size / 2**20),
                      "peak_rss_mb": round(_peak_rss_mb()), "quantization": w.stats.to_meta()}))


def cmd_index(args):
    from pyserini_splare.index import build_index

    if os.path.exists(args.out):
        shutil.rmtree(args.out)
    t0 = time.time()
    build_index("lucene", args.vectors, args.out, threads=args.threads, validate=True)
    secs = time.time() - t0
    size = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(args.out) for f in fs)
    print(json.dumps({"step": "index", "vectors": args.vectors, "seconds": round(secs, 1),
                      "index_mb": round(size / 2**20), "peak_rss_mb": round(_peak_rss_mb())}))


def cmd_search(args):
    from pyserini_splare.search import open_searcher

    rng = np.random.default_rng(args.seed + 1)
    perm, cdf = _feature_sampler(rng)
    queries = {}
    for j in range(args.queries):
        ids, w = _doc(rng, perm, cdf, args.query_terms)
        queries[f"q{j}"] = {f"L{i}": float(x) for i, x in zip(ids, w)}
    s = open_searcher(args.index)
    # Direct Anserini: the same integer maps, built the same way, straight into SimpleImpactSearcher.
    prepared = {q: s.prepare(q, v) for q, v in queries.items()}
    warm = dict(list(queries.items())[:50])
    s.batch_search(warm, args.hits, args.threads)
    s._raw_batch({q: prepared[q] for q in warm}, args.hits, args.threads)

    def ours():
        return s.batch_search(queries, args.hits, args.threads)

    def direct():
        jq, jids = s._JArrayList(), s._JArrayList()
        for qid, q in prepared.items():
            m = s._JHashMap()
            for t, w in q.items():
                m.put(t, s._JInt(w))
            jq.add(m)
            jids.add(qid)
        res = s._searcher.batch_search(jq, jids, args.hits, args.threads)
        return {e.getKey(): [(h.docid, h.score) for h in e.getValue()] for e in res.entrySet().toArray()}

    times = {"ours": [], "direct": []}
    for _ in range(args.repeats):
        for name, fn in (("direct", direct), ("ours", ours)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    best = {k: min(v) for k, v in times.items()}
    print(json.dumps({"step": "search", "index": args.index, "queries": args.queries, "query_terms": args.query_terms,
                      "hits": args.hits, "threads": args.threads,
                      "ours_ms_per_query": round(1000 * best["ours"] / args.queries, 3),
                      "direct_ms_per_query": round(1000 * best["direct"] / args.queries, 3),
                      "ratio_ours_over_direct": round(best["ours"] / best["direct"], 3)}))


def cmd_all(args):
    me = [sys.executable, os.path.abspath(__file__)]
    os.makedirs(args.workdir, exist_ok=True)
    for n in args.sizes:
        out = os.path.join(args.workdir, f"vec{n}")
        subprocess.run(me + ["write", "--docs", str(n), "--out", out], check=True)
    for n in args.index_sizes:
        vec = os.path.join(args.workdir, f"vec{n}")
        if not os.path.exists(vec):
            subprocess.run(me + ["write", "--docs", str(n), "--out", vec], check=True)
        idx = os.path.join(args.workdir, f"idx{n}")
        subprocess.run(me + ["index", "--vectors", vec, "--out", idx, "--threads", str(args.threads)], check=True)
        for threads in sorted({1, args.threads}):
            subprocess.run(me + ["search", "--index", idx, "--threads", str(threads)], check=True)


def cmd_read(args):
    """Validated reading of a vectors directory (what every index builder does first) against bare
    json.loads of the same lines: the validation's own cost per document."""
    from pyserini_splare.vectors import iter_jsonl_vectors, open_collection

    parts = open_collection(args.vectors).parts[: args.parts]
    t = time.process_time()
    n = sum(1 for p in parts for _ in iter_jsonl_vectors(p))
    validated = time.process_time() - t
    t = time.process_time()
    for p in parts:
        with open(p, "rb") as f:
            for line in f:
                json.loads(line.decode("utf-8"))
    bare = time.process_time() - t
    print(f"{n:,} documents: validated read {1e6 * validated / n:.0f} CPU us/doc, "
          f"json.loads alone {1e6 * bare / n:.0f} CPU us/doc")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("--docs", type=int, required=True)
    w.add_argument("--out", required=True)
    w.add_argument("--scale", type=float, default=100.0)
    w.add_argument("--seed", type=int, default=0)
    i = sub.add_parser("index")
    i.add_argument("--vectors", required=True)
    i.add_argument("--out", required=True)
    i.add_argument("--threads", type=int, default=2)
    s = sub.add_parser("search")
    s.add_argument("--index", required=True)
    s.add_argument("--queries", type=int, default=1000)
    s.add_argument("--query-terms", type=int, default=40)
    s.add_argument("--hits", type=int, default=1000)
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--repeats", type=int, default=3)
    s.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("read")
    r.add_argument("--vectors", required=True)
    r.add_argument("--parts", type=int, default=1, help="first N part files")
    a = sub.add_parser("all")
    a.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    a.add_argument("--index-sizes", type=int, nargs="+", default=[20_000, 100_000])
    a.add_argument("--threads", type=int, default=2)
    a.add_argument("--workdir", default="/tmp/bench_backbone")
    args = p.parse_args()
    {"write": cmd_write, "index": cmd_index, "search": cmd_search, "read": cmd_read, "all": cmd_all}[args.cmd](args)


if __name__ == "__main__":
    main()
