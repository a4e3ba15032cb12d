"""Lucene impact build: the term-frequency builder vs Anserini's IndexCollection, and its cost vs the scale.

    python scripts/bench_lucene_build.py --docs 20000 --work /tmp/bench_lucene_build --threads 2

Writes a pooled SPLARE-shaped collection (pyserini_splare.testing.synth, 400 terms/document, 131,072 features) at
scale 100 and, re-quantized from the same float vectors, at scales 10 and 1000; then builds, each in
its own process (``python -m pyserini_splare.index``-equivalent ``build`` call, JVM start included):

* termfreq and anserini at scale 100 (same vectors, same run): wall and CPU seconds of the build's
  process (all its threads: Python, Lucene's indexing threads, JIT compiler, GC), index size;
* termfreq at scales 10 and 1000: the ratio of build times (the claim: < 1.5x);
* then searches both scale-100 indexes with 100 queries, top 1000, and counts differing results.

``--breakdown`` instead runs one more termfreq build at scale 100 and prints its CPU by thread (Java's
indexing threads, JIT compilers, GC) and by phase of the Python thread.

The machine's load (``/proc/loadavg``) is printed with every number: on a shared machine wall times
inflate with other load, CPU times much less.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the checkout's package, without an install
from pyserini_splare.testing import synth  # noqa: E402


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def child_build(argv) -> int:
    """``_build VECTORS INDEX THREADS METHOD``: one build, its metadata as JSON on stdout."""
    from pyserini_splare.index.lucene_impact import build

    vec, idx, threads, method = argv
    meta = build([vec], idx, threads=int(threads), overwrite=True, method=method)
    print(json.dumps(meta["build"]))
    return 0


def child_breakdown(argv) -> int:
    """``_breakdown VECTORS INDEX THREADS``: one termfreq build, its CPU by thread and phase, as JSON.

    The main (Python) thread's CPU is split at the builder's seams (wrapped here, not changed): before
    the first line (interpreter, imports, JVM start, writer), producing (read, validate, text, JNI),
    from the last line to the commit's end (the flush), docids.npy. Java threads' CPU is read from
    /proc/self/task just before the indexing threads stop (an exited thread's CPU is not listed)."""
    import collections
    import re

    import pyserini_splare.index.lucene_impact as L

    vec, idx, threads = argv
    tck = os.sysconf("SC_CLK_TCK")

    def by_thread():
        out = collections.Counter()
        for tid in os.listdir("/proc/self/task"):
            try:
                name = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
                st = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[re.sub(r"-\d+$", "", name)] += (int(st[11]) + int(st[12])) / tck
        return out

    seen = {}
    close, texts, ids = L._Feeder.close, L._lucene_texts, L.lucene_ids

    def close_(self):
        seen["threads"], seen["closed"] = by_thread(), time.thread_time()
        close(self)

    def texts_(coll, validate):
        seen["first"] = time.thread_time()
        yield from texts(coll, validate)
        seen["last"] = time.thread_time()

    def ids_(d):
        t = time.thread_time()
        n = ids(d)  # the ids read back for docids.npy
        seen["docids"] = time.thread_time() - t
        return n

    L._Feeder.close, L._lucene_texts, L.lucene_ids = close_, texts_, ids_
    L.build([vec], idx, threads=int(threads), overwrite=True)
    th = seen["threads"]
    print(json.dumps({"process": time.process_time(), "start": seen["first"], "produce": seen["last"] - seen["first"],
                      "flush": seen["closed"] - seen["last"], "docids": seen["docids"],
                      "threads": {k: v for k, v in th.items() if k != "python" and v >= 0.01}}))
    return 0


def breakdown(vec: Path, idx: Path, threads: int) -> dict:
    env = dict(os.environ, PYSERINI_SPLARE_PROGRESS="0")
    out = subprocess.run([sys.executable, __file__, "_breakdown", str(vec), str(idx), str(threads)],
                         check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def timed_build(vec: Path, idx: Path, threads: int, method: str) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    l0 = load()
    t0 = time.time()
    env = dict(os.environ, PYSERINI_SPLARE_PROGRESS="0")
    out = subprocess.run([sys.executable, __file__, "_build", str(vec), str(idx), str(threads), method],
                         check=True, capture_output=True, text=True, env=env).stdout
    wall = time.time() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    size = sum(f.stat().st_size for f in idx.rglob("*") if f.is_file()) / 2**20
    return {"wall_s": wall, "cpu_s": cpu, "size_mib": size, "load_before": l0, "load_after": load(),
            "build": json.loads(out.strip().splitlines()[-1])}


def search_diff(a: Path, b: Path, queries: Path, k: int) -> tuple[int, int]:
    from pyserini_splare.formats.query_vectors import read_query_vectors
    from pyserini_splare.search.base import QuantizedQuery
    from pyserini_splare.search.lucene import ImpactSearcher

    qs = {q: QuantizedQuery(v) for q, v in read_query_vectors(queries).items()}
    with ImpactSearcher(a) as s:
        ra = s.batch_search(qs, k, 2)
    with ImpactSearcher(b) as s:
        rb = s.batch_search(qs, k, 2)
    return sum(ra[q] != rb[q] for q in qs), len(qs)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_build":
        return child_build(argv[1:])
    if argv and argv[0] == "_breakdown":
        return child_breakdown(argv[1:])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--docs", type=int, default=20000)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--work", required=True)
    p.add_argument("--skip-anserini", action="store_true")
    p.add_argument("--scales", default="10,1000")
    p.add_argument("--breakdown", action="store_true",
                   help="only one more termfreq build at scale 100, its CPU by thread and phase")
    a = p.parse_args(argv)
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    cfg = synth.SynthConfig(**synth.PRESETS["splare-pooled"], seed=0)
    base = work / "s100"
    if not (base / "vectors" / "meta.json").is_file():
        synth.write_collection(*synth.stream(cfg, a.docs, a.queries), cfg, base, 100.0, overwrite=True)
    print(f"# {a.docs:,} pooled SPLARE-shaped documents, {a.threads} threads, {os.cpu_count()} cores")
    if a.breakdown:
        l0 = load()
        b = breakdown(base / "vectors", work / "idx.breakdown", a.threads)
        print(f"termfreq scale 100, CPU s by part (load {l0} -> {load()}): process {b['process']:.2f}; main thread: "
              f"start {b['start']:.2f}, producing {b['produce']:.2f}, last line to commit {b['flush']:.2f}, "
              f"docids.npy {b['docids']:.2f}; " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(b["threads"].items())))
        return 0
    rows = {}
    r = rows["termfreq@100"] = timed_build(base / "vectors", work / "idx.tf100", a.threads, "termfreq")
    print(f"termfreq scale 100: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} CPU s, {r['size_mib']:.1f} MiB, "
          f"load {r['load_before']} -> {r['load_after']}", flush=True)
    if not a.skip_anserini:
        r = rows["anserini@100"] = timed_build(base / "vectors", work / "idx.ans100", a.threads, "anserini")
        print(f"anserini scale 100: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} CPU s, {r['size_mib']:.1f} MiB, "
              f"load {r['load_before']} -> {r['load_after']}", flush=True)
        t, n = rows["termfreq@100"], rows["anserini@100"]
        print(f"speed-up: x{n['wall_s'] / t['wall_s']:.1f} wall, x{n['cpu_s'] / t['cpu_s']:.1f} CPU")
        diff, nq = search_diff(work / "idx.tf100", work / "idx.ans100", base / "queries.jsonl", 1000)
        print(f"top-1000 of {nq} queries: {diff} differ (docids or scores)", flush=True)
    from pyserini_splare.vectors import copy_vectors_dir

    for s in (float(x) for x in a.scales.split(",")):
        d = work / f"s{s:g}" / "vectors"
        if not (d / "meta.json").is_file():
            d.parent.mkdir(parents=True, exist_ok=True)
            copy_vectors_dir(base / "vectors", d, quant_scale=s, overwrite=True)
        r = rows[f"termfreq@{s:g}"] = timed_build(d, work / f"idx.tf{s:g}", a.threads, "termfreq")
        print(f"termfreq scale {s:g}: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} CPU s, {r['size_mib']:.1f} MiB, "
              f"load {r['load_before']} -> {r['load_after']}", flush=True)
    sc = [f"termfreq@{float(x):g}" for x in a.scales.split(",")]
    if len(sc) == 2:
        x, y = rows[sc[0]], rows[sc[1]]
        print(f"{sc[1]} / {sc[0]}: x{y['wall_s'] / x['wall_s']:.2f} wall, x{y['cpu_s'] / x['cpu_s']:.2f} CPU")
    (work / "bench_lucene_build.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
