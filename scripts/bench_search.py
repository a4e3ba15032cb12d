"""One search benchmark: exact, Seismic, Lucene (this toolkit and Anserini called directly), BMP and SINDI.

    # a synthetic collection (pyserini_splare.testing.synth presets: splare-pooled, splare, splade)
    python scripts/bench_search.py run --preset splare-pooled --docs 50000 --queries 200 --work /tmp/b50k
    # real vectors (e.g. SPLADE-tiny on CACM) with queries encoded by the same encoder
    python scripts/bench_search.py run --vectors V --topics cacm --encoder splade:PATH --work /tmp/bcacm --label cacm
    # the table of several finished runs and the plot
    python scripts/bench_search.py table /tmp/b50k /tmp/b100k ... --plot docs/img/bench_search.png
    # more backends later, or in a parallel folder: --reuse keeps the rows (and indexes) already there
    python scripts/bench_search.py run --preset splare-pooled --docs 50000 --work /tmp/b50k --backends exact,bmp --reuse
    # Seismic index size and search RSS vs documents: the points, a fit, the fit at 10M
    python scripts/bench_search.py growth /tmp/b50k /tmp/b100k /tmp/b1m --extrapolate 10000000
    # Lucene recall vs quantization scale
    python scripts/bench_search.py scale --docs 5000 --scales 10,25,51.2,100 --work /tmp/benchscale

What ``run`` measures, for each backend setting and k in {10, 1000}:

* in-process (index loaded once, load time excluded; each backend in its own child process, so
  peak RSS is its own): per-query latency p50 / p99 and queries/s with one query at a time on one
  thread, queries/s of one batch on all cores, and the process's CPU time per query (all its
  threads, the JVM's included: on a shared machine wall time inflates with other load, CPU time
  much less); recall@k = |top-k ∩ exact top-k| / k against the exact backend on the same integers;
* through the CLI (``python -m pyserini_splare.search``, load included): queries/s = queries / the
  whole command's wall time, 1 thread and all threads (exact, seismic at defaults, lucene);
* build time, index size, peak RSS while searching; the machine's load average before each step.

Backend settings (scripts/presets/bench_search.yaml): ``exact``; ``seismic`` at defaults and a near-exact setting (every query term,
heap_factor 0.7); ``seismic-lean`` (built with n_postings=auto: ~10x smaller index); ``lucene``
(this toolkit's ImpactSearcher); ``anserini`` (the same Lucene index through Anserini's
SimpleImpactSearcher from Python, as Pyserini calls it: what this toolkit costs on top, and what the
searcher cost before its hits came back in one string); ``bmp`` (``bmp`` 0.2.8, block-max pruning,
alpha = beta = 1, and beta = 0.1; no batch API, so no all-core number); ``sindi`` (the toolkit's SINDI backend:
VSAG's sparse inverted index through ``pyvsag`` 0.18.5, no build-time pruning, rows at its query-time
pruning knobs; searched one query at a time, so no all-core number).
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
sys.path.insert(0, str(HERE.parent))  # the checkout's package, without an install
from pyserini_splare.testing import synth  # noqa: E402

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


KS = (10, 1000)
CORES = os.cpu_count() or 1


def _settings(path: Path = HERE / "presets" / "bench_search.yaml"):
    """The backend settings (presets/bench_search.yaml) as {backend: [(row label, index folder, searcher
    kind, searcher options)]}, {backend: build options} and the labels of the rows also run by the CLI."""
    import yaml

    doc = yaml.safe_load(path.read_text())
    settings = {b: [(r["label"], r["index"], r["searcher"], r.get("options", {})) for r in v["rows"]]
                for b, v in doc["backends"].items()}
    build_options = {b: v["build_options"] for b, v in doc["backends"].items() if "build_options" in v}
    return settings, build_options, tuple(doc["cli_rows"])


SETTINGS, BUILD_OPTIONS, CLI_ROWS = _settings()


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def build_bmp(vectors: Path, index: Path) -> dict:
    """``_bmp_build``: a BMP index of a vectors directory (block size 32, uncompressed ranges), in a child."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "_bmp_build", str(vectors), str(index)]
    r = run_measured(cmd)
    r["size_mib"] = dir_size(index.parent) / 2**20 if index.is_file() else dir_size(index) / 2**20
    return r


def bmp_build_worker(argv) -> int:
    import bmp

    from pyserini_splare.formats.vectors_reader import open_collection

    vec, out = argv
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    ix = bmp.Indexer(out, 32, False)
    for docid, v, _ in open_collection(vec).iter_records():
        ix.add_document(docid, v)
    ix.finish()
    return 0


class _Anserini:
    """Anserini's SimpleImpactSearcher from Python as Pyserini calls it (hits read one by one)."""

    def __init__(self, index):
        from pyserini_splare._java import jclass

        self.s = jclass("io.anserini.search.SimpleImpactSearcher")(str(index))
        self.HashMap, self.Integer, self.ArrayList = (jclass("java.util.HashMap"), jclass("java.lang.Integer"),
                                                      jclass("java.util.ArrayList"))

    def _jq(self, q):
        m = self.HashMap()
        for t, w in q.items():
            m.put(t, self.Integer(int(w)))
        return m

    def batch_search(self, queries, k, threads):
        if threads == 1:
            return {qid: [(h.docid, float(round(h.score))) for h in self.s.search(self._jq(q), k)]
                    for qid, q in queries.items()}
        jq, ids = self.ArrayList(), self.ArrayList()
        for qid, q in queries.items():
            jq.add(self._jq(q))
            ids.add(qid)
        res = self.s.batch_search(jq, ids, k, threads)
        return {e.getKey(): [(h.docid, float(round(h.score))) for h in e.getValue()] for e in res.entrySet().toArray()}

    def close(self):
        self.s.close()


class _Bmp:
    """BMP's searcher; options alpha, beta (1.0 = safe block-max pruning on BMP's own 8-bit impacts)."""

    def __init__(self, index, options):
        import bmp

        self.s = bmp.Searcher(str(index))
        self.alpha, self.beta = float(options.get("alpha", 1.0)), float(options.get("beta", 1.0))

    def batch_search(self, queries, k, threads):
        out = {}
        for qid, q in queries.items():
            ids, scores = self.s.search(q, k, self.alpha, self.beta)
            out[qid] = sorted(zip(ids, (float(x) for x in scores)), key=lambda h: (-h[1], h[0]))
        return out

    def close(self):
        pass


def search_worker(argv) -> int:
    """``_search INDEX QUERIES KIND OPTIONS_JSON OUT``: load once, then for k in KS: one query at a
    time on one thread (latencies), one batch on all cores; dump timings and hits as JSON."""
    index, qpath, kind, options, out = argv
    from pyserini_splare.formats.query_vectors import read_query_vectors
    from pyserini_splare.search.base import QuantizedQuery
    from pyserini_splare.search.registry import open_searcher

    queries = {q: QuantizedQuery({t: int(w) for t, w in v.items()}) for q, v in read_query_vectors(qpath).items()}
    if kind == "toolkit":
        s = open_searcher(index, **json.loads(options))
    elif kind == "anserini":
        s = _Anserini(index)
    else:
        s = _Bmp(index, json.loads(options))
    res = {}
    warm = dict(list(queries.items())[:10])
    for k in KS:
        s.batch_search(warm, k, 1)  # warm-up (JIT, page cache)
        lat = []
        hits = {}
        c0 = time.process_time()
        for qid, q in queries.items():
            t0 = time.perf_counter()
            hits.update(s.batch_search({qid: q}, k, 1))
            lat.append(time.perf_counter() - t0)
        cpu = (time.process_time() - c0) / len(queries)
        lat = np.array(lat) * 1000
        row = {"p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
               "qps_1t": len(queries) / (lat.sum() / 1000), "cpu_ms": cpu * 1000, "qps_all": None,
               "hits": {q: [d for d, _ in h] for q, h in hits.items()}}
        # bmp has no batch API; SINDI's searcher runs one query at a time (pyvsag searches one per call)
        if kind != "bmp" and getattr(s, "backend", "") != "sindi" and CORES > 1:
            t0 = time.perf_counter()
            s.batch_search(queries, k, CORES)
            row["qps_all"] = len(queries) / (time.perf_counter() - t0)
        res[k] = row
    s.close()
    Path(out).write_text(json.dumps(res))
    return 0


def cli_search(index: Path, queries: Path, k: int, threads: int, out: Path, options: dict) -> dict:
    out.unlink(missing_ok=True)  # the CLI never overwrites a run
    cmd = [sys.executable, "-m", "pyserini_splare.search", "--index", str(index), "--query-vectors", str(queries),
           "--query-vectors-quantized", "--output", str(out), "--hits", str(k), "--threads", str(threads)]
    if options:
        cmd += ["--searcher-options", json.dumps(options)]
    return run_measured(cmd)


def write_query_vectors(index: Path, topics: str, encoder: str, out: Path) -> None:
    """Real queries: encode the topics with the encoder that built the vectors (the search CLI's own
    path, feature space checked against the index), float weights as ``search --encoder`` uses them.
    In a child process: a parent that has loaded torch would inflate every later child's peak RSS
    (Linux keeps ru_maxrss across fork + exec)."""
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "_queries", str(index), topics, encoder, str(out)],
                   check=True)


def query_worker(argv) -> int:
    index, topics, encoder, out = argv
    from pyserini_splare.formats.index_meta import read_index_meta
    from pyserini_splare.index.backends import get_backend
    from pyserini_splare.search.queries import encode_topics
    from pyserini_splare.topics import get_topics

    meta = read_index_meta(index)
    vecs = encode_topics(encoder, get_topics(topics), get_backend(meta["backend"]), meta)
    with open(out, "w") as f:
        for qid, v in vecs.items():
            f.write(json.dumps({"id": qid, "vector": v}) + "\n")
    print(f"encoded {len(vecs)} queries -> {out}", file=sys.stderr)
    return 0


def recall(hits: dict, ref: dict, k: int) -> float:
    return float(np.mean([len(set(hits[q][:k]) & set(ref[q][:k])) / max(1, min(k, len(ref[q]))) for q in ref]))


def integer_queries(src: Path, dst: Path, scale: float, quantized: bool) -> None:
    """The queries every backend gets, as integers at the index's scale (BMP and Anserini take only
    integers; the toolkit's searchers then use them as they are)."""
    from pyserini_splare.formats.quant import quantize
    from pyserini_splare.formats.query_vectors import read_query_vectors

    with open(dst, "w") as f:
        for qid, v in read_query_vectors(src).items():
            terms = list(v)
            w = np.fromiter(v.values(), dtype=np.float64, count=len(terms))
            q = w.astype(np.int64) if quantized else quantize(w, scale)
            vec = {t: int(x) for t, x in zip(terms, q.tolist()) if x > 0}
            if vec:
                f.write(json.dumps({"id": qid, "vector": vec}) + "\n")


def cmd_run(a) -> int:
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    cfg = synth.SynthConfig(**synth.PRESETS[a.preset], seed=a.seed)
    vec = Path(a.vectors) if a.vectors else work / "vectors"
    raw_q = Path(a.query_vectors) if a.query_vectors else work / "queries.jsonl"
    quantized = not a.vectors
    if a.vectors:
        if not (vec / "meta.json").is_file():
            raise SystemExit(f"--vectors {vec}: not a vectors directory (no meta.json)")
        if not a.query_vectors and not (a.topics and a.encoder):
            raise SystemExit("--vectors needs --query-vectors FILE, or --topics and --encoder to encode them")
        label = a.label or vec.name
    else:
        label = a.label or f"{a.preset} {a.docs // 1000}k"
        if not (vec / "meta.json").is_file():
            t0 = time.time()
            synth.write_collection(*synth.stream(cfg, a.docs, a.queries), cfg, work, a.quant_scale, overwrite=True)
            print(f"generated {a.docs} docs / {a.queries} queries in {time.time() - t0:.0f}s", file=sys.stderr)
    vmeta = json.loads((vec / "meta.json").read_text())
    n_docs = vmeta["stats"]["documents"]
    backends = a.backends.split(",")
    info = {"label": label, "docs": n_docs, "cores": CORES, "machine": os.uname().nodename, "rows": []}
    prev = work / "bench.json"
    prev_rows = json.loads(prev.read_text()).get("rows", []) if a.reuse and prev.is_file() else []
    for r in prev_rows:  # rows an interrupted run finished still hold their hits: recall is taken below
        r["k"] = {int(k): v for k, v in r["k"].items()}
    builds = {}
    for b in ["exact"] + [x for x in backends if x != "exact"]:
        for name, folder, kind, opts in SETTINGS[b]:
            idx = work / f"index.{folder}"
            if folder not in builds:
                if kind == "bmp":
                    idx = work / "index.bmp" / "index.bmp"
                meta_file = (work / "index.bmp" / "index.bmp") if kind == "bmp" else (idx / "pyserini_splare_index.json")
                if a.reuse and meta_file.exists() and folder in json.loads((work / "builds.json").read_text() or "{}"):
                    builds[folder] = json.loads((work / "builds.json").read_text())[folder]
                else:
                    l0 = loadavg()
                    print(f"building {folder} ...", file=sys.stderr)
                    if kind == "bmp":
                        br = build_bmp(vec, idx)
                    else:
                        br = build(folder.split("-")[0], vec, idx, CORES, BUILD_OPTIONS.get(folder))
                    br.pop("stdout", None)
                    builds[folder] = {**br, "load": l0, "index_meta": _index_facts(idx)}
                    old = json.loads((work / "builds.json").read_text()) if (work / "builds.json").is_file() else {}
                    (work / "builds.json").write_text(json.dumps({**old, folder: builds[folder]}))
            if kind == "bmp":
                idx = work / "index.bmp" / "index.bmp"
            if b == "exact" and not raw_q.is_file():
                write_query_vectors(idx, a.topics, a.encoder, raw_q)
            qfile = work / "queries.int.jsonl"
            if not qfile.is_file():
                integer_queries(raw_q, qfile, vmeta["quant_scale"], quantized)
            print(f"searching {name} ...", file=sys.stderr)
            l0 = loadavg()
            out = work / f"hits.{name.split()[0]}.{abs(hash(name)) % 10**6}.json"
            sr = run_measured([sys.executable, str(Path(__file__).resolve()), "_search", str(idx), str(qfile), kind,
                               json.dumps(opts), str(out)])
            res = {int(k): v for k, v in json.loads(out.read_text()).items()}
            row = {"name": name, "backend": b, "build": builds[folder], "search_rss_mib": sr["peak_rss_mib"],
                   "load": l0, "k": {}, "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}
            if a.session:
                row["session"] = a.session
            for k, r in res.items():
                row["k"][k] = {x: r[x] for x in ("p50_ms", "p99_ms", "qps_1t", "qps_all", "cpu_ms")}
                row["k"][k]["hits"] = r["hits"]
            if name in CLI_ROWS and a.cli:
                for k in KS:
                    for t in sorted({1, CORES}):
                        l1 = loadavg()
                        cr = cli_search(idx, qfile, k, t, work / "cli.run.txt", opts)
                        nq = sum(1 for _ in open(qfile))
                        row["k"][k][f"cli_qps_{t}t"] = nq / cr["wall_s"]
                        row["k"][k][f"cli_cpu_s_{t}t"] = cr["cpu_s"]
                        row["k"][k][f"cli_load_{t}t"] = l1
            info["rows"].append(row)
            # written after every row, with the earlier rows kept: an interrupted run loses nothing
            done = {r["name"] for r in info["rows"]}
            (work / "bench.json").write_text(json.dumps(
                {**info, "rows": info["rows"] + [r for r in prev_rows if r["name"] not in done]}))
    if a.reuse and prev_rows:
        # rows of backends not rerun this time stay (recall against the same exact ranking: exact is
        # deterministic), in SETTINGS order
        rerun = {r["name"] for r in info["rows"]}
        order = [n for b in SETTINGS for n, *_ in SETTINGS[b]]
        rows = info["rows"] + [r for r in prev_rows if r["name"] not in rerun]
        info["rows"] = sorted(rows, key=lambda r: order.index(r["name"]) if r["name"] in order else len(order))
    ref = {k: r["hits"] for k, r in next(r for r in info["rows"] if r["backend"] == "exact")["k"].items()}
    for row in info["rows"]:
        for k in KS:
            if "hits" in row["k"][k]:
                row["k"][k]["recall"] = recall(row["k"][k].pop("hits"), ref[k], k)
    (work / "bench.json").write_text(json.dumps(info, indent=1))
    print_table([info])
    return 0


def _fmt(x, spec=".2f"):
    return "–" if x is None else format(x, spec)


def _session(row, info) -> str:
    s = row.get("session", info.get("session"))
    return f" (s{s})" if s else ""


def print_table(infos) -> None:
    hdr = ("collection", "backend / setting", "k", "p50 ms", "p99 ms", "CPU ms/q", "q/s 1t", f"q/s {CORES}t",
           "CLI q/s 1t", f"CLI q/s {CORES}t", "recall@k", "index MiB", "build s", "search RSS MiB", "load")
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for info in infos:
        for row in info["rows"]:
            for k, r in sorted(row["k"].items(), key=lambda x: int(x[0])):
                print(f"| {info['label']} ({info['docs']:,}) | {row['name']} | {k} | {_fmt(r['p50_ms'])} | "
                      f"{_fmt(r['p99_ms'])} | {_fmt(r['cpu_ms'])} | {_fmt(r['qps_1t'], '.0f')} | {_fmt(r['qps_all'], '.0f')} | "
                      f"{_fmt(r.get('cli_qps_1t'), '.0f')} | {_fmt(r.get(f'cli_qps_{CORES}t'), '.0f')} | "
                      f"{_fmt(r.get('recall'), '.4f')} | {row['build']['size_mib']:.0f} | {row['build']['wall_s']:.0f} | "
                      f"{row['search_rss_mib']:.0f} | {row['load']:.1f}{_session(row, info)} |")


def _index_facts(idx: Path) -> dict:
    """What the growth fit needs from an index's metadata (kept with the results: indexes get deleted)."""
    f = Path(idx) / "pyserini_splare_index.json"
    if not f.is_file():
        return {}
    m = json.loads(f.read_text())
    return {"seismic_build": m.get("seismic_build"), "build": m.get("build")}


# Seismic keeps n_postings x (number of posting lists) postings, the heaviest ones (index/seismic.py).
def _kept_postings(facts: dict) -> float | None:
    b, sb = facts.get("build") or {}, facts.get("seismic_build") or {}
    if not b.get("postings") or not isinstance(sb.get("n_postings"), (int, float)):
        return None
    return float(min(b["postings"], sb["n_postings"] * b["distinct_terms"]))


def growth_points(works) -> list[dict]:
    """One point per Seismic build and search row: documents, postings (all / kept in the lists),
    index MiB and search RSS MiB."""
    pts = []
    for w in works:
        w = Path(w)
        info = json.loads((w / "bench.json").read_text())
        builds = json.loads((w / "builds.json").read_text()) if (w / "builds.json").is_file() else {}
        for row in info["rows"]:
            if not row["backend"].startswith("seismic") or "near-exact" in row["name"]:
                continue
            folder = row["backend"]
            facts = (builds.get(folder) or {}).get("index_meta") or _index_facts(w / f"index.{folder}")
            kept = _kept_postings(facts)
            if kept is None:
                continue
            pts.append({"work": str(w), "label": info["label"], "docs": info["docs"], "setting": folder,
                        "n_postings": facts["seismic_build"]["n_postings"], "postings": facts["build"]["postings"],
                        "kept": kept, "index_mib": row["build"]["size_mib"], "rss_mib": row["search_rss_mib"]})
    return pts


def cmd_growth(a) -> int:
    """Seismic index size and search RSS vs collection size and shape: the measured points, a
    non-negative least-squares fit of ``bytes = a * kept postings * terms per document + c`` over every
    point of both settings (the posting lists hold the kept postings, and each list's block summaries,
    blocks being a fixed fraction of a list, grow with the documents' length; c: what does not grow,
    e.g. the process itself), each point's error, and that fit at ``--extrapolate`` documents of the
    largest build's shape (pyserini_splare/index/advice.py holds the RSS fit as its memory rule)."""
    pts = growth_points(a.works)
    if len(pts) < 3:
        raise SystemExit(f"growth: {len(pts)} Seismic points in {a.works}; the fit needs 3 or more")
    for p in pts:
        p["tpd"] = p["postings"] / p["docs"]
    A = np.array([[p["kept"] * p["tpd"], 1.0] for p in pts], dtype=np.float64)
    fits, preds = {}, {}
    for what in ("index_mib", "rss_mib"):
        y = np.array([p[what] * 2**20 for p in pts])
        from scipy.optimize import nnls

        coef, _ = nnls(A, y)  # no part of an index costs negative bytes
        fits[what], preds[what] = coef, A @ coef
    for p, pi, pr in zip(pts, preds["index_mib"], preds["rss_mib"]):
        p["err_index"], p["err_rss"] = pi / (p["index_mib"] * 2**20) - 1, pr / (p["rss_mib"] * 2**20) - 1
    print("| collection | documents | terms/doc | setting | n_postings | postings (all) | kept in lists | index MiB | "
          "search RSS MiB | index KB/doc | RSS / index | fit error index / RSS |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for p in sorted(pts, key=lambda p: (p["setting"], p["tpd"], p["docs"])):
        print(f"| {p['label']} | {p['docs']:,} | {p['tpd']:.0f} | {p['setting']} | {p['n_postings']} | {p['postings']:,} | "
              f"{p['kept']:,.0f} | {p['index_mib']:,.0f} | {p['rss_mib']:,.0f} | "
              f"{p['index_mib'] * 2**20 / p['docs'] / 1e3:.1f} | {p['rss_mib'] / p['index_mib']:.2f} | "
              f"{p['err_index']:+.0%} / {p['err_rss']:+.0%} |")
    for what in ("index_mib", "rss_mib"):
        coef = fits[what]
        big = [p for p in pts if p["docs"] >= 50_000]
        worst = max(abs(p["err_index" if what == "index_mib" else "err_rss"]) for p in big) if big else float("nan")
        print(f"\n{what}: bytes = {coef[0]:.3f} x kept postings x terms per document + {coef[1] / 2**20:.0f} MiB "
              f"({len(pts)} points; largest relative error from 50,000 documents on: {worst:.0%})")
    n = a.extrapolate
    big = max(pts, key=lambda p: (p["docs"], p["kept"] < p["postings"]))
    per_doc = big["tpd"]
    lists = int(big["kept"] / big["n_postings"]) if big["kept"] < big["postings"] else 131072
    total = n * per_doc
    print(f"\nat {n:,} documents of the largest build's shape ({per_doc:.0f} postings each, {total:.3g} postings; "
          f"{lists:,} posting lists):")
    from pyserini_splare.index.seismic import DEFAULT_BUILD, auto_n_postings

    for setting, n_post in (("defaults", DEFAULT_BUILD["n_postings"]),
                            ("lean (auto)", auto_n_postings(int(total), lists))):
        kept = min(total, n_post * lists)
        idx = fits["index_mib"] @ [kept * per_doc, 1.0]
        rss = fits["rss_mib"] @ [kept * per_doc, 1.0]
        print(f"  {setting}: n_postings {n_post}, kept {kept:.3g} ({kept / total:.0%}): index ~{idx / 1e9:.0f} GB, "
              f"search RSS ~{rss / 2**30:.0f} GiB")
    # The other reading: at a fixed kept fraction (auto keeps 10 % from ~330k documents on) both parts
    # grow with N, so the largest pruned build scales linearly.
    bigp = max((p for p in pts if p["kept"] < p["postings"]), key=lambda p: p["docs"], default=None)
    if bigp:
        f = n / bigp["docs"]
        print(f"  linear from the largest pruned build ({bigp['docs']:,} documents, {bigp['setting']}, kept "
              f"{bigp['kept'] / bigp['postings']:.0%}): index ~{bigp['index_mib'] * 2**20 * f / 1e9:.0f} GB, "
              f"search RSS ~{bigp['rss_mib'] * f / 2**10:.0f} GiB")
    return 0


def merge_runs(infos) -> list[dict]:
    """Runs of one collection (same label) in several folders (e.g. backends measured by parallel
    runs) become one: rows in order of appearance, a setting measured twice kept once (the first)."""
    merged: dict[str, dict] = {}
    for info in infos:
        m = merged.setdefault(info["label"], {**info, "rows": []})
        seen = {r["name"] for r in m["rows"]}
        m["rows"] += [{"session": info.get("session"), **r} for r in info["rows"] if r["name"] not in seen]
    return list(merged.values())


def cmd_table(a) -> int:
    infos = merge_runs([json.loads((Path(w) / "bench.json").read_text()) for w in a.works])
    print_table(infos)
    if a.plot:
        plot(infos, a.plot)
    return 0


def plot(infos, path) -> None:
    """CPU ms/query (1 thread, log) vs recall@k, one panel per k; colour = collection, marker =
    backend setting (two legends, not one entry per point)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    markers = {"exact": "s", "seismic defaults": "o", "seismic near-exact": "P", "seismic lean": "v",
               "lucene (toolkit)": "D", "lucene (Anserini": "d", "bmp": "^"}

    def marker(name):
        return next((m for key, m in markers.items() if name.startswith(key)), "x")

    fig, axes = plt.subplots(1, len(KS), figsize=(12, 5.2))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, k in zip(axes, KS):
        for ci, info in enumerate(infos):
            for row in info["rows"]:
                r = row["k"].get(str(k)) or row["k"].get(k)
                if r.get("recall") is None:  # an unfinished run
                    continue
                ax.scatter([r["cpu_ms"]], [r["recall"]], marker=marker(row["name"]),
                           color=colours[ci % len(colours)], s=45, alpha=0.85)
        ax.set_xscale("log")
        ax.set_xlabel("CPU ms per query, 1 thread, one query at a time (log)")
        ax.set_ylabel(f"recall@{k} vs exact")
        ax.set_title(f"k = {k}")
        ax.grid(True, alpha=0.3)
    coll = [Line2D([], [], ls="", marker="o", color=colours[ci % len(colours)], label=f"{info['label']} ({info['docs']:,})")
            for ci, info in enumerate(infos)]
    sett = [Line2D([], [], ls="", marker=m, color="0.3", label=key + ")" * (key.count("(") > key.count(")")))
            for key, m in markers.items()]
    fig.legend(handles=coll, fontsize=7, loc="lower left", ncol=2, title="collection", title_fontsize=7)
    fig.legend(handles=sett, fontsize=7, loc="lower right", ncol=2, title="backend / setting", title_fontsize=7)
    fig.tight_layout(rect=(0, 0.2, 1, 1))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"plot: {path}", file=sys.stderr)


def cmd_scale(a) -> int:
    """Lucene build time / size / recall vs the exact float ranking, for several quantization scales."""
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    cfg = synth.SynthConfig(**synth.PRESETS[a.preset], seed=a.seed)
    docs, queries = synth.generate(cfg, a.docs, a.queries)
    X = synth.to_csr(docs, cfg.n_features)
    Q = synth.to_csr(queries, cfg.n_features)
    S = (Q.astype(np.float64) @ X.T.astype(np.float64)).toarray()
    ref = {f"q{i}": [synth.docid(j) for j in np.lexsort((np.arange(S.shape[1]), -S[i]))[:100]] for i in range(len(queries))}
    print(f"\nLucene impact vs quantization scale: {a.preset}, {a.docs:,} docs, {a.queries} queries; "
          "recall vs the exact ranking on float weights")
    print("scale | build s (wall/cpu) | size MiB | R@10 | R@100 | ms/q 1t (k=1000)")
    print("--- | --- | --- | --- | --- | ---")
    for scale in (float(x) for x in a.scales.split(",")):
        d = work / f"s{scale:g}"
        synth.write_collection(docs, queries, cfg, d, scale, overwrite=True)
        br = build("lucene", d / "vectors", d / "index", CORES)
        integer_queries(d / "queries.jsonl", d / "queries.int.jsonl", scale, True)
        run_measured([sys.executable, str(Path(__file__).resolve()), "_search", str(d / "index"),
                      str(d / "queries.int.jsonl"), "toolkit", "{}", str(d / "hits.json")])
        r = json.loads((d / "hits.json").read_text())["1000"]
        print(f"{scale:g} | {br['wall_s']:.1f} / {br['cpu_s']:.1f} | {br['size_mib']:.1f} | {recall(r['hits'], ref, 10):.4f} | "
              f"{recall(r['hits'], ref, 100):.4f} | {r['p50_ms']:.2f}", flush=True)
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_search":
        return search_worker(argv[1:])
    if argv and argv[0] == "_queries":
        return query_worker(argv[1:])
    if argv and argv[0] == "_bmp_build":
        return bmp_build_worker(argv[1:])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="build + search every backend on one collection, print its table")
    s = sub.add_parser("scale", help="Lucene cost and effectiveness vs quantization scale")
    g = sub.add_parser("growth", help="Seismic index size and search RSS vs documents: points, fit, extrapolation")
    g.add_argument("works", nargs="+")
    g.add_argument("--extrapolate", type=int, default=10_000_000, help="documents to extrapolate to (NeuCLIR1: ~10M)")
    t = sub.add_parser("table", help="one table (and plot) of several finished run folders")
    t.add_argument("works", nargs="+")
    t.add_argument("--plot", default=None)
    for x in (r, s):
        x.add_argument("--preset", choices=list(synth.PRESETS), default="splare-pooled")
        x.add_argument("--docs", type=int, default=50000)
        x.add_argument("--queries", type=int, default=200)
        x.add_argument("--seed", type=int, default=0)
        x.add_argument("--work", required=True, help="scratch folder (vectors, indexes, hits)")
    r.add_argument("--label", default=None, help="collection name in the table and plot")
    r.add_argument("--quant-scale", type=float, default=100.0)
    r.add_argument("--session", default=None, help="tag the rows (the table marks them, e.g. 's4')")
    r.add_argument("--backends", default="exact,seismic,seismic-lean,lucene,anserini,bmp")
    r.add_argument("--no-cli", dest="cli", action="store_false", help="skip the timings through the search CLI")
    r.add_argument("--reuse", action="store_true",
                   help="reuse indexes already built in --work, and keep the rows of backends not rerun")
    r.add_argument("--vectors", default=None, help="benchmark this vectors directory (real encoder output)")
    r.add_argument("--query-vectors", default=None, help="with --vectors: query vectors JSONL (model outputs)")
    r.add_argument("--topics", default=None, help="with --vectors: topics to encode with --encoder (e.g. cacm)")
    r.add_argument("--encoder", default=None, help="with --vectors: query encoder SPEC (e.g. splade:PATH)")
    s.add_argument("--scales", default="10,25,51.2,100")
    a = p.parse_args(argv)
    return {"run": cmd_run, "scale": cmd_scale, "table": cmd_table, "growth": cmd_growth}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
