"""Search-speed benchmark: exact vs Seismic vs Lucene impact on synthetic topic-structured collections.

Subcommands::

    # build every backend on a synthetic collection, search, print the table, draw the plot
    python scripts/bench_search.py run --preset splare-pooled --docs 100000 --queries 200 \\
        --work /tmp/bench100k --backends exact,seismic,lucene --plot docs/img/bench_search.png
    # Lucene build cost and effectiveness vs quantization scale (recall vs exact *float* ranking)
    python scripts/bench_search.py scale --docs 5000 --scales 10,25,51.2,100 --work /tmp/benchscale

Each build runs in its own process (``python -m pyserini_splare.index``), each backend's searches in
another (this script's ``_search`` worker), so that peak RSS (``wait4`` rusage) and CPU time are
per backend. Wall times on a shared machine are inflated by other load: CPU seconds are printed
too. Recall@k = |top-k(backend) ∩ top-k(exact)| / k, averaged over queries, where exact scores the
same quantized integer weights (docs/backends.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import synth  # noqa: E402

SWEEP = [(qc, hf) for qc in (5, 10, 20, 40) for hf in (0.6, 0.8, 0.9, 1.0)]


def _hwm_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_measured(cmd: list[str]) -> dict:
    """Like subprocess.run, with the child's CPU time (wait4) and peak RSS.

    Peak RSS is the child's own ``VmHWM`` polled from /proc, not ``ru_maxrss``: Linux carries the
    parent's high-water mark across fork + exec into the child's ru_maxrss, so a parent that had
    loaded torch (or held a collection) would inflate every child's number."""
    import tempfile

    env = dict(os.environ, PYSERINI_SPLARE_PROGRESS="0")
    t0 = time.time()
    with tempfile.TemporaryFile("w+") as out, open(os.devnull, "w") as devnull:
        p = subprocess.Popen(cmd, env=env, stdout=out, stderr=devnull, text=True)
        peak = 0
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, _hwm_kib(p.pid))
            time.sleep(0.05)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        stdout = out.read()
    wall = time.time() - t0
    if p.returncode != 0:
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}")
    return {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss_mib": peak / 1024, "stdout": stdout}


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def build(backend: str, vectors: Path, index: Path, threads: int, options: dict | None = None) -> dict:
    cmd = [sys.executable, "-m", "pyserini_splare.index", "--backend", backend, "--input", str(vectors),
           "--index", str(index), "--threads", str(threads), "--overwrite"]
    if options:
        cmd += ["--options", json.dumps(options)]
    r = run_measured(cmd)
    r["size_mib"] = dir_size(index) / 2**20
    return r


def search_worker(argv) -> int:
    """``_search``: load an index once, time batch searches for each setting, dump hits as JSON."""
    p = argparse.ArgumentParser()
    p.add_argument("--index", required=True)
    p.add_argument("--queries", required=True)
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--settings", default="[{}]", help="JSON list of searcher option dicts")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    from pyserini_splare.search._base import open_searcher
    from pyserini_splare.vectors import read_query_vectors

    queries = read_query_vectors(a.queries)
    results = []
    for opts in json.loads(a.settings):
        s = open_searcher(a.index, **opts)
        s.batch_search(dict(list(queries.items())[:5]), a.k, 1)  # warm-up (JIT, page cache)
        row = {"options": opts, "qps": {}, "cpu_ms": {}}
        hits = None
        for t in (int(x) for x in a.threads.split(",")):
            t0, c0 = time.perf_counter(), time.process_time()
            if t == 1:  # one query at a time: latency as a user sees it
                h = {qid: s.batch_search({qid: v}, a.k, 1)[qid] for qid, v in queries.items()}
            else:
                h = s.batch_search(queries, a.k, t)
            row["qps"][t] = len(queries) / (time.perf_counter() - t0)
            # CPU time of the whole process (all threads, JVM's included) per query: on a shared
            # machine wall time is inflated by other load, CPU time much less.
            row["cpu_ms"][t] = 1000 * (time.process_time() - c0) / len(queries)
            hits = hits or h
        row["hits"] = {q: [d for d, _ in v] for q, v in hits.items()}
        results.append(row)
        s.close()
    with open(a.out, "w") as f:
        json.dump(results, f)
    return 0


def search(index: Path, queries: Path, k: int, threads: str, settings: list[dict], out: Path) -> tuple[list, dict]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "_search", "--index", str(index), "--queries", str(queries),
           "--k", str(k), "--threads", threads, "--settings", json.dumps(settings), "--out", str(out)]
    r = run_measured(cmd)
    return json.loads(out.read_text()), r


def write_query_vectors(index: Path, topics: str, encoder: str, out: Path) -> None:
    """Real queries: encode the topics with the encoder that built the vectors (the search CLI's own
    path, feature space checked against the index), float weights as ``search --encoder`` uses them.
    In a child process: a parent that has loaded torch would inflate every later child's peak RSS
    (Linux keeps ru_maxrss across fork + exec)."""
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "_queries", str(index), topics, encoder, str(out)],
                   check=True)


def query_worker(argv) -> int:
    index, topics, encoder, out = argv
    from pyserini_splare.encode import encode_queries
    from pyserini_splare.index._meta import read_index_meta
    from pyserini_splare.topics import get_topics

    vecs = encode_queries(encoder, get_topics(topics), index_meta=read_index_meta(index))
    with open(out, "w") as f:
        for qid, v in vecs.items():
            f.write(json.dumps({"id": qid, "vector": v}) + "\n")
    print(f"encoded {len(vecs)} queries -> {out}", file=sys.stderr)
    return 0


def recall(hits: dict, ref: dict, k: int) -> float:
    return float(np.mean([len(set(hits[q][:k]) & set(ref[q][:k])) / max(1, min(k, len(ref[q]))) for q in ref]))


def cmd_run(a) -> int:
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    cfg = synth.SynthConfig(**synth.PRESETS[a.preset], seed=a.seed)
    vec = Path(a.vectors) if a.vectors else work / "vectors"
    qfile = Path(a.query_vectors) if a.query_vectors else work / "queries.jsonl"
    if a.vectors:
        if not (vec / "meta.json").is_file():
            raise SystemExit(f"--vectors {vec}: not a vectors directory (no meta.json)")
        if not a.query_vectors and not (a.topics and a.encoder):
            raise SystemExit("--vectors needs --query-vectors FILE, or --topics and --encoder to encode them")
        a.docs = json.loads((vec / "meta.json").read_text())["stats"]["documents"]
        a.preset = a.label or vec.name  # the label of the table and plot
    elif not (vec / "meta.json").is_file():
        t0 = time.time()
        synth.write_collection(*synth.stream(cfg, a.docs, a.queries), cfg, work, a.quant_scale, overwrite=True)
        print(f"generated {a.docs} docs / {a.queries} queries in {time.time() - t0:.0f}s", file=sys.stderr)
    lucene_vec = vec
    if a.lucene_scale and "lucene" in a.backends.split(","):
        # The same vectors re-quantized coarser for Lucene only: its build cost is linear in the
        # scale, its search cost is not (docs/benchmarks.md, scale study). Lucene's recall is then
        # measured against exact on the finer integers, i.e. it includes the rounding.
        from pyserini_splare.vectors import copy_vectors_dir

        lucene_vec = work / f"lucene-s{a.lucene_scale:g}" / "vectors"
        if not (lucene_vec / "meta.json").is_file():
            t0 = time.time()
            lucene_vec.parent.mkdir(parents=True, exist_ok=True)
            copy_vectors_dir(vec, lucene_vec, quant_scale=a.lucene_scale, overwrite=True)
            print(f"wrote the scale-{a.lucene_scale:g} copy in {time.time() - t0:.0f}s", file=sys.stderr)
    backends = a.backends.split(",")
    rows, points = [], {}
    ref = None
    threads = f"1,{os.cpu_count()}"
    for b in ["exact"] + [x for x in backends if x != "exact"]:
        idx = work / f"index.{b}"
        opts = json.loads(a.seismic_options) if b == "seismic" and a.seismic_options else None
        if idx.is_dir() and a.reuse:
            binfo = json.loads((idx / "pyserini_splare_index.json").read_text())["build"]
            br = {"wall_s": binfo["seconds"], "cpu_s": float("nan"), "peak_rss_mib": float("nan"),
                  "size_mib": dir_size(idx) / 2**20}
        else:
            print(f"building {b} ...", file=sys.stderr)
            br = build(b, lucene_vec if b == "lucene" else vec, idx, os.cpu_count(), opts)
        settings = [{}]
        if b == "seismic":
            settings = [{}] + [{"query_cut": qc, "heap_factor": hf} for qc, hf in SWEEP]
        if b == "exact" and not qfile.is_file():
            write_query_vectors(idx, a.topics, a.encoder, qfile)
        print(f"searching {b} ({len(settings)} settings) ...", file=sys.stderr)
        res, sr = search(idx, qfile, a.k, threads, settings, work / f"hits.{b}.json")
        if b == "exact":
            ref = res[0]["hits"]
        for i, r in enumerate(res):
            r10, r100 = recall(r["hits"], ref, 10), recall(r["hits"], ref, 100)
            ms = 1000 / r["qps"]["1"]
            cpu = r.get("cpu_ms", {}).get("1", float("nan"))
            if i == 0:
                rows.append({"backend": b, "build_wall_s": br["wall_s"], "build_cpu_s": br["cpu_s"],
                             "build_rss_mib": br["peak_rss_mib"], "size_mib": br["size_mib"],
                             "search_rss_mib": sr["peak_rss_mib"], "ms_1t": ms, "qps_1t": r["qps"]["1"],
                             "qps_all": r["qps"][str(os.cpu_count())], "r10": r10, "r100": r100, "cpu_ms_1t": cpu})
            else:
                points.setdefault(b, []).append({**r["options"], "ms": ms, "cpu_ms": cpu, "r10": r10, "r100": r100})
        if b != "seismic":
            points.setdefault(b, []).append({"ms": 1000 / res[0]["qps"]["1"], "r10": recall(res[0]["hits"], ref, 10),
                                             "r100": recall(res[0]["hits"], ref, 100),
                                             "cpu_ms": res[0].get("cpu_ms", {}).get("1", float("nan"))})
    a.queries = len(ref)
    (work / "bench.json").write_text(json.dumps({"rows": rows, "points": points, "docs": a.docs, "label": a.preset},
                                                indent=1))
    print_table(rows, a, points)
    if a.plot:
        plot(points, a.plot, f"{a.preset}, {a.docs:,} docs, {a.queries} queries, k={a.k}, 1 thread")
    return 0


def print_table(rows, a, points):
    print(f"\n{a.preset}: {a.docs:,} docs, {a.queries} queries, top-{a.k}, {os.cpu_count()} cores")
    hdr = ("backend", "build s (wall/cpu)", "build RSS MiB", "size MiB", "search RSS MiB",
           "ms/q 1t (wall)", "CPU ms/q 1t", "q/s 1t", f"q/s {os.cpu_count()}t", "R@10", "R@100")
    print(" | ".join(hdr))
    print(" | ".join("---" for _ in hdr))
    for r in rows:
        print(f"{r['backend']} | {r['build_wall_s']:.1f} / {r['build_cpu_s']:.1f} | {r['build_rss_mib']:.0f} | "
              f"{r['size_mib']:.1f} | {r['search_rss_mib']:.0f} | {r['ms_1t']:.3f} | {r.get('cpu_ms_1t', float('nan')):.3f} | {r['qps_1t']:.1f} | "
              f"{r['qps_all']:.1f} | {r['r10']:.4f} | {r['r100']:.4f}")
    by = {r["backend"]: r for r in rows}
    if "seismic" in points:
        print("\nSeismic sweep (query_cut, heap_factor): ms/query on 1 thread, recall@10, recall@100 vs exact")
        for p in points["seismic"]:
            line = (f"  qc={p['query_cut']:>3} hf={p['heap_factor']:.1f}: {p['ms']:.3f} ms wall, "
                    f"{p.get('cpu_ms', float('nan')):.3f} CPU ms  R@10 {p['r10']:.4f}  R@100 {p['r100']:.4f}")
            if "lucene" in by:
                line += (f"  speed-up vs Lucene 1t: x{by['lucene']['ms_1t'] / p['ms']:.1f} wall, "
                         f"x{by['lucene'].get('cpu_ms_1t', float('nan')) / p.get('cpu_ms', float('nan')):.1f} CPU")
            print(line)


def plot(points, path, title):
    """recall@10 and recall@100 vs ms/query: one line per Seismic query_cut (heap_factor varies along
    it), one marker per exact backend. CPU ms when every point has it (less distorted by other load
    on a shared machine than wall time), else wall ms."""
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    allp = [p for pts in points.values() for p in pts]
    key = "cpu_ms" if all(math.isfinite(p.get("cpu_ms", float("nan"))) for p in allp) else "ms"
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, r in zip(axes, ("r10", "r100")):
        for b, pts in points.items():
            if b == "seismic":
                for qc in sorted({p["query_cut"] for p in pts}):
                    line = sorted((p for p in pts if p["query_cut"] == qc), key=lambda p: p[key])
                    ax.plot([p[key] for p in line], [p[r] for p in line], "o-", ms=4,
                            label=f"seismic qc={qc} (hf {min(p['heap_factor'] for p in line)}-{max(p['heap_factor'] for p in line)})")
            elif r in pts[0]:
                ax.plot([pts[0][key]], [pts[0][r]], "s", ms=8, label=b)
        ax.set_xscale("log")
        ax.set_xlabel(f"{'CPU' if key == 'cpu_ms' else 'wall'} ms/query, 1 thread (log scale)")
        ax.set_ylabel(f"recall@{r[1:]} vs exact")
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot: {path}", file=sys.stderr)


def cmd_report(a) -> int:
    """Re-print the table and redraw the plot from a finished ``run`` folder (adds CPU times if the
    search workers recorded them after the run started)."""
    work = Path(a.work)
    data = json.loads((work / "bench.json").read_text())
    rows, points = data["rows"], {}
    ref = json.loads((work / "hits.exact.json").read_text())[0]["hits"]
    for r in rows:
        b = r["backend"]
        res = json.loads((work / f"hits.{b}.json").read_text())
        r["cpu_ms_1t"] = res[0].get("cpu_ms", {}).get("1", float("nan"))
        r["ms_1t"], r["qps_1t"] = 1000 / res[0]["qps"]["1"], res[0]["qps"]["1"]
        r["qps_all"] = res[0]["qps"][str(os.cpu_count())]
        for x in (res[1:] if b == "seismic" else res[:1]):
            points.setdefault(b, []).append({**x["options"], "ms": 1000 / x["qps"]["1"],
                                             "cpu_ms": x.get("cpu_ms", {}).get("1", float("nan")),
                                             "r10": recall(x["hits"], ref, 10), "r100": recall(x["hits"], ref, 100)})
    n_docs = data.get("docs") or json.loads((work / "vectors" / "meta.json").read_text())["stats"]["documents"]
    a.docs, a.queries = n_docs, len(ref)
    a.preset = a.label or data.get("label") or a.preset
    print_table(rows, a, points)
    if a.plot:
        plot(points, a.plot, f"{a.preset}, {n_docs:,} docs, {len(ref)} queries, k={a.k}, 1 thread")
    return 0


def cmd_scale(a) -> int:
    """Lucene build time / size / recall vs the exact float ranking, for several quantization scales."""
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    cfg = synth.SynthConfig(**synth.PRESETS[a.preset], seed=a.seed)
    docs, queries = synth.generate(cfg, a.docs, a.queries)
    X = synth.to_csr(docs, cfg.n_features)
    Q = synth.to_csr(queries, cfg.n_features)
    S = (Q.astype(np.float64) @ X.T.astype(np.float64)).toarray()
    ref = {f"q{i}": [synth.docid(j) for j in np.lexsort((np.arange(S.shape[1]), -S[i]))[:a.k]] for i in range(len(queries))}
    print(f"\nLucene impact vs quantization scale: {a.preset}, {a.docs:,} docs, {a.queries} queries; "
          "recall vs the exact ranking on float weights")
    print("scale | build s (wall/cpu) | size MiB | R@10 | R@100 | ms/q 1t")
    print("--- | --- | --- | --- | --- | ---")
    for scale in (float(x) for x in a.scales.split(",")):
        d = work / f"s{scale:g}"
        synth.write_collection(docs, queries, cfg, d, scale, overwrite=True)
        br = build("lucene", d / "vectors", d / "index", os.cpu_count())
        res, _ = search(d / "index", d / "queries.jsonl", a.k, "1", [{}], d / "hits.json")
        hits = res[0]["hits"]
        print(f"{scale:g} | {br['wall_s']:.1f} / {br['cpu_s']:.1f} | {br['size_mib']:.1f} | {recall(hits, ref, 10):.4f} | "
              f"{recall(hits, ref, 100):.4f} | {1000 / res[0]['qps']['1']:.2f}", flush=True)
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_search":
        return search_worker(argv[1:])
    if argv and argv[0] == "_queries":
        return query_worker(argv[1:])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="build + search every backend, print the table, draw the plot")
    s = sub.add_parser("scale", help="Lucene cost and effectiveness vs quantization scale")
    rep = sub.add_parser("report", help="re-print the table / redraw the plot of a finished run folder")
    rep.add_argument("--plot", default=None)
    for x in (r, s, rep):
        x.add_argument("--preset", choices=list(synth.PRESETS), default="splare-pooled")
        x.add_argument("--docs", type=int, default=100000)
        x.add_argument("--queries", type=int, default=200)
        x.add_argument("--k", type=int, default=100)
        x.add_argument("--seed", type=int, default=0)
        x.add_argument("--work", required=True, help="scratch folder (vectors, indexes, hits)")
        x.add_argument("--label", default=None, help="collection name in the table and plot title")
    r.add_argument("--quant-scale", type=float, default=100.0)
    r.add_argument("--backends", default="exact,seismic,lucene")
    r.add_argument("--seismic-options", default=None, help="JSON build options for seismic")
    r.add_argument("--lucene-scale", type=float, default=None,
                   help="build Lucene from a copy quantized at this scale (e.g. 10: ~5x cheaper build at 1M docs)")
    r.add_argument("--reuse", action="store_true", help="reuse indexes already in --work (build columns from metadata)")
    r.add_argument("--plot", default=None, help="PNG path for recall@10 vs latency")
    r.add_argument("--vectors", default=None, help="benchmark this vectors directory (real encoder output) "
                   "instead of a synthetic collection")
    r.add_argument("--query-vectors", default=None, help="with --vectors: query vectors JSONL")
    r.add_argument("--topics", default=None, help="with --vectors: topics to encode with --encoder (e.g. cacm)")
    r.add_argument("--encoder", default=None, help="with --vectors: query encoder SPEC (e.g. splade:PATH)")
    s.add_argument("--scales", default="10,25,51.2,100")
    a = p.parse_args(argv)
    return {"run": cmd_run, "scale": cmd_scale, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
