#!/usr/bin/env python
"""Load test of ``python -m pyserini_splare.serve`` on loopback, against the in-process batch search.

For each ``--index NAME=DIR``: search the queries in this process the way the search CLI does (its
query encoder, then ``batch_search`` in batches of 64); start the server (cache off), warm it with
``--warmup-requests`` uncounted requests (as many as the in-process pass that warms the JVM before the
second in-process pass, by default), send
``--requests`` GET searches of the topics' texts (cycled) at each concurrency, and print p50/p99
latency, q/s, errors, the server's RSS, the server's and the client's CPU milliseconds per request
and the load average; stop the server and search in process again. The ratio of served q/s at
concurrency 8 to the in-process rate is printed against both in-process passes (the machine's load
moves; the two bracket the served runs), and so is the CPU ratio (in-process CPU ms per query over
the server's plus the client's at concurrency 8), the fair one on a loaded machine. The client is a minimal keep-alive HTTP/1.1 client on
asyncio streams (``--client httpx``: httpx.AsyncClient, ~1 ms of CPU a request on the same cores).
Prints numbers, asserts nothing. With ``--workers N`` the server runs N processes (``serve --workers``):
its CPU is summed over them and its memory is their PSS summed (they share a Seismic index's pages).

With ``--query-vectors FILE`` (``search --query-vectors``'s JSONL) the requests are ``POST
/v1/{index}/search`` with the pre-encoded ``vector`` instead (``--quantized``: integer weights used as
they are, ``search --query-vectors-quantized``), and the in-process reference is ``batch_search`` of
the same vectors.

    nice -n 10 python scripts/bench_serve.py --topics cacm --index bm25=indexes/cacm.bm25 \\
        --index splade=indexes/cacm.splade.lucene --requests 640 --concurrency 1 8 32
    # a synthetic SPLARE-shaped set (python -m pyserini_splare.testing.synth) on Seismic
    nice -n 10 python scripts/bench_serve.py --index seismic=p50k.seismic \\
        --query-vectors p50k/queries.jsonl --quantized --requests 640 --concurrency 1 8 32
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# queries searched untimed before the in-process pass is timed: the JVM compiles BM25's and Lucene's
# search, torch warms up (the server gets 64 requests and the concurrency-1 run before the one at 8)
WARM_UP = 128


def tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (``serve --workers N``: the parent and its N worker processes)."""
    out = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            for child in (task / "children").read_text().split():
                out += tree(int(child))
        except OSError:  # a thread that ended
            pass
    return out


def rss_mb(pid: int) -> float:
    """Resident MB of the server: PSS summed over its processes (``--workers`` share a Seismic index's
    pages, which each one's RSS would count again); one process: its RSS, which PSS then equals."""
    total = 0.0
    for p in tree(pid):
        for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) / 1024
    return total


def start(index_args: list[str], extra: list[str]):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    err = open(f"/tmp/bench_serve.{os.getpid()}.err", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "pyserini_splare.serve", *index_args, "--port", "0", "--cache-size",
                             "0", "--no-request-log", "--max-queue", "4096", *extra], env=env, stdout=subprocess.DEVNULL,
                            stderr=err)
    while True:
        err.seek(0)
        m = re.search(r"on (http://[\d.]+:\d+)/", err.read())
        if m:
            return proc, m.group(1)
        if proc.poll() is not None:
            err.seek(0)
            raise SystemExit(f"server failed: {err.read()[-1000:]}")
        time.sleep(0.3)


async def load(url: str, name: str, texts: list, n: int, conc: int, hits: int, quantized: bool = False):
    """``texts``: query strings (GET) or ``{term: weight}`` vectors (POST)."""
    import httpx

    lat: list[float] = []
    errors = 0
    it = iter(range(n))

    async def worker(c):
        nonlocal errors
        for i in it:
            t0 = time.perf_counter()
            q = texts[i % len(texts)]
            if isinstance(q, str):
                r = await c.get(f"{url}/v1/{name}/search", params={"query": q, "hits": hits})
            else:
                r = await c.post(f"{url}/v1/{name}/search", json={"vector": q, "hits": hits, "quantized": quantized,
                                                                  "docs": False})
            lat.append(time.perf_counter() - t0)
            errors += r.status_code != 200

    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=conc)) as c:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c) for _ in range(conc)))
        wall = time.perf_counter() - t0
    lat.sort()
    return {"p50_ms": 1000 * statistics.median(lat), "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
            "qps": n / wall, "errors": errors}


async def load_raw(url: str, name: str, texts: list, n: int, conc: int, hits: int, quantized: bool = False):
    """As :func:`load`, from a minimal HTTP/1.1 keep-alive client on asyncio streams: the requests' bytes
    are built before the clock starts and only the status line and content-length of an answer are
    parsed, so the client costs a fraction of httpx's CPU (~1 ms a request here) on the cores it
    shares with the server -- what a load generator such as wrk does."""
    import json
    from urllib.parse import urlencode

    host, port = url[len("http://"):].rsplit(":", 1)
    reqs = []
    for q in texts:
        if isinstance(q, str):
            reqs.append(f"GET /v1/{name}/search?{urlencode({'query': q, 'hits': hits})} HTTP/1.1\r\nHost: {host}\r\n\r\n"
                        .encode())
        else:
            body = json.dumps({"vector": q, "hits": hits, "quantized": quantized, "docs": False}).encode()
            reqs.append(f"POST /v1/{name}/search HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    lat: list[float] = []
    errors = 0
    it = iter(range(n))

    async def worker():
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for i in it:
                t0 = time.perf_counter()
                writer.write(reqs[i % len(reqs)])
                head = await reader.readuntil(b"\r\n\r\n")
                m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                await reader.readexactly(int(m.group(1)) if m else 0)
                lat.append(time.perf_counter() - t0)
                errors += head[9:12] != b"200"
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    wall = time.perf_counter() - t0
    lat.sort()
    return {"p50_ms": 1000 * statistics.median(lat), "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
            "qps": n / wall, "errors": errors}


def cpu_s(pid: int | None = None) -> float:
    """User + system CPU seconds of this process, or of a server process and its live workers."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    total = 0
    for p in tree(pid):
        f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(f[11]) + int(f[12])
    return total / os.sysconf("SC_CLK_TCK")


def in_process(index_dir: str, texts: list, n: int, hits: int, quantized: bool = False) -> float:
    """q/s of the search CLI's path in this process: encode the queries (sparse) and batch_search them;
    pre-encoded vectors are searched as ``search --query-vectors`` does (the searcher quantizes them)."""
    sys.path.insert(0, str(ROOT))
    from pyserini_splare.backends import get_backend
    from pyserini_splare.index import read_index_meta
    from pyserini_splare.search import open_searcher
    from pyserini_splare.search.queries import encode_topics

    meta = read_index_meta(index_dir)
    backend = get_backend(meta["backend"])
    topics = {str(i): texts[i % len(texts)] for i in range(n)}
    searcher = open_searcher(index_dir)
    if texts and not isinstance(texts[0], str):
        from pyserini_splare.search import QuantizedQuery

        vecs = {str(i): (QuantizedQuery(texts[i % len(texts)]) if quantized else texts[i % len(texts)]) for i in range(n)}
        qids = list(vecs)
        for i in range(0, WARM_UP, 64):
            searcher.batch_search({q: vecs[q] for q in qids[i:i + 64]}, k=hits)
        t0, c0 = time.perf_counter(), cpu_s()
        for i in range(0, len(qids), 64):
            searcher.batch_search({q: vecs[q] for q in qids[i:i + 64]}, k=hits)
        return n / (time.perf_counter() - t0), 1000 * (cpu_s() - c0) / n
    spec = (meta.get("vectors") or {}).get("encoder", {}).get("spec")
    warm = dict(list(topics.items())[:WARM_UP])
    warm = warm if backend.query_kind == "text" else encode_topics(spec, warm, backend, meta, batch_size=64)
    for i in range(0, len(warm), 64):
        searcher.batch_search(dict(list(warm.items())[i:i + 64]), k=hits)
    t0, c0 = time.perf_counter(), cpu_s()
    queries = topics if backend.query_kind == "text" else encode_topics(spec, topics, backend, meta, batch_size=64)
    qids = list(queries)
    for i in range(0, len(qids), 64):
        searcher.batch_search({q: queries[q] for q in qids[i:i + 64]}, k=hits)
    return n / (time.perf_counter() - t0), 1000 * (cpu_s() - c0) / n


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--index", action="append", required=True, metavar="NAME=DIR")
    p.add_argument("--topics", default="cacm")
    p.add_argument("--requests", type=int, default=640)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--hits", type=int, default=10)
    p.add_argument("--query-vectors", metavar="JSONL", help="send these pre-encoded queries by POST, not --topics' texts")
    p.add_argument("--quantized", action="store_true", help="the --query-vectors weights are integer impacts")
    p.add_argument("--client", choices=["raw", "httpx"], default="raw",
                   help="raw: a minimal keep-alive client on asyncio streams (default); httpx: httpx.AsyncClient")
    p.add_argument("--client-loop", choices=["uvloop", "asyncio"], default="uvloop",
                   help="the client's event loop (uvloop, the server's, when installed: the client shares the "
                        "server's cores, so its CPU is the server's loss)")
    p.add_argument("--workers", type=int, default=1,
                   help="the server's --workers (CPU and RSS are summed over its processes)")
    p.add_argument("--warmup-requests", type=int, default=None, metavar="N",
                   help="requests sent at the highest --concurrency before the measured windows and not counted "
                        "(default: --requests, the size of the in-process pass that warms the JVM before the "
                        "in-process (after) pass; 0: only a 64-request check)")
    p.add_argument("--server-args", nargs=argparse.REMAINDER, default=[])
    args = p.parse_args()
    sys.path.insert(0, str(ROOT))
    from pyserini_splare.topics import get_topics

    if args.query_vectors:
        from pyserini_splare.formats.query_vectors import read_query_vectors

        texts = list(read_query_vectors(args.query_vectors).values())
    else:
        texts = list(get_topics(args.topics).values())
    client = load_raw if args.client == "raw" else load
    loop_factory = None
    if args.client_loop == "uvloop":
        try:
            import uvloop

            loop_factory = uvloop.new_event_loop
        except ImportError:
            args.client_loop = "asyncio (uvloop not installed)"

    def run(coro):
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(coro)

    print(f"client: {args.client} on {args.client_loop}; server workers: {args.workers}; load: {os.getloadavg()}")
    print("index\tconcurrency\tp50_ms\tp99_ms\tq/s\terrors\tserver_rss_mb\tserver_cpu_ms/q\tclient_cpu_ms/q\tloadavg1")
    for spec in args.index:
        name, _, path = spec.partition("=")
        before, before_cpu = in_process(path, texts, args.requests, args.hits, args.quantized)
        print(f"{name}\tin-process batch (before)\t{before:.1f} q/s\t{before_cpu:.2f} CPU ms/q\tload {os.getloadavg()[0]:.2f}",
              flush=True)
        workers = ["--workers", str(args.workers)] if args.workers != 1 else []
        proc, url = start(["--index", spec, *workers], args.server_args)
        served8 = cpu8 = None
        try:
            run(client(url, name, texts, min(64, args.requests), 4, args.hits, args.quantized))  # the server answers
            warm = args.requests if args.warmup_requests is None else args.warmup_requests
            if warm > 0:
                # The in-process (after) pass runs on a JVM (and caches) that the (before) pass warmed with the
                # same queries; the server gets the same: a JIT that has compiled the paths of these queries.
                r = run(client(url, name, texts, warm, max(args.concurrency), args.hits, args.quantized))
                print(f"{name}\twarm-up ({warm} requests at {max(args.concurrency)}, not counted)\t{r['qps']:.1f} q/s\t"
                      f"{r['errors']} errors", flush=True)
            for c in args.concurrency:
                s0, c0 = cpu_s(proc.pid), cpu_s()
                r = run(client(url, name, texts, args.requests, c, args.hits, args.quantized))
                s1, c1 = cpu_s(proc.pid), cpu_s()
                server_ms, client_ms = 1000 * (s1 - s0) / args.requests, 1000 * (c1 - c0) / args.requests
                print(f"{name}\t{c}\t{r['p50_ms']:.2f}\t{r['p99_ms']:.2f}\t{r['qps']:.1f}\t{r['errors']}\t"
                      f"{rss_mb(proc.pid):.0f}\t{server_ms:.2f}\t{client_ms:.2f}\t{os.getloadavg()[0]:.2f}", flush=True)
                if c == 8:
                    served8, cpu8 = r["qps"], server_ms + client_ms
        finally:
            proc.terminate()
            proc.wait(30)
        after, after_cpu = in_process(path, texts, args.requests, args.hits, args.quantized)
        print(f"{name}\tin-process batch (after)\t{after:.1f} q/s\t{after_cpu:.2f} CPU ms/q\tload {os.getloadavg()[0]:.2f}",
              flush=True)
        if served8 is not None:
            # Under load, wall-clock q/s favours the side with more runnable threads (server and client
            # get more of the scheduler's time slices than one in-process thread): the CPU ratio is the
            # throughput ratio the two would have on the same otherwise idle cores, when CPU-bound.
            print(f"{name}\tserved@8 / in-process q/s = {served8 / before:.2f} (before), {served8 / after:.2f} (after), "
                  f"{served8 / ((before + after) / 2):.2f} (mean); in-process CPU ms/q / (server + client CPU ms/q "
                  f"at 8) = {(before_cpu + after_cpu) / 2 / cpu8:.2f}", flush=True)
    print(f"load: {os.getloadavg()}")

if __name__ == "__main__":
    main()
