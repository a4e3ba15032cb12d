"""Seismic and exact served with pre-encoded sparse queries, and MCP over streamable HTTP and stdio.

A CI-sized SPLARE-shaped synthetic collection (pyserini_splare.testing.synth, as tests/test_seismic_backend.py
builds it, smaller): the reference is ``python -m pyserini_splare.search --query-vectors`` on the same index,
read back from its TREC run file, at the default Seismic settings and at non-default ``query_cut`` /
``heap_factor``. No JVM: the server starts in a few seconds.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import sys
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("seismic")

pytestmark = pytest.mark.slow  # builds a Seismic index and starts a server subprocess


def _serve_helpers():
    """test_serve.py's server starter and run reader, reused (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location("_serve_helpers", Path(__file__).parent / "test_serve.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_h = _serve_helpers()
start_server, read_run, _env = _h.start_server, _h.read_run, _h._env

N_DOCS, N_QUERIES, HITS = 3000, 40, 10
# non-default Seismic query settings that prune hard (one posting list, every block below the k-th best
# score skipped): on this collection they change 5 of the 40 queries' hits (checked below)
CUT, HEAP = 1, 1.0


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from pyserini_splare.formats.query_vectors import read_query_vectors
    from pyserini_splare.index.__main__ import main as index_main
    from pyserini_splare.search.__main__ import main as search_main
    from pyserini_splare.testing import synth

    root = tmp_path_factory.mktemp("serve_seismic")
    cfg = synth.SynthConfig(n_features=131072, doc_terms=120, query_terms=30, active_features=8192, seed=7)
    docs, queries = synth.generate(cfg, N_DOCS, N_QUERIES)
    vdir, qfile = synth.write_collection(docs, queries, cfg, root, 100.0)
    for b in ("exact", "seismic"):
        assert index_main(["--backend", b, "--input", str(vdir), "--index", str(root / b), "--threads", "2"]) == 0
    runs = {}
    for name, index, extra in (("exact", "exact", []), ("seismic", "seismic", []),
                               ("seismic-pruned", "seismic", ["--query-cut", str(CUT), "--heap-factor", str(HEAP)])):
        runs[name] = root / f"{name}.txt"
        # synth writes integer impacts at the index's scale: declared quantized, as a client would say so
        assert search_main(["--index", str(root / index), "--query-vectors", str(qfile), "--query-vectors-quantized",
                            "--output", str(runs[name]), "--hits", str(HITS), *extra]) == 0
    return {"dir": root, "runs": runs, "queries": read_query_vectors(qfile)}


@pytest.fixture(scope="module")
def server(built):
    d = built["dir"]
    proc, url, err = start_server(["--index", f"seismic={d / 'seismic'}", "--index", f"exact={d / 'exact'}",
                                   "--no-request-log"], d, wait_s=120)
    yield {"proc": proc, "url": url, "err": err}
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _post(url, index, vec, **body):
    r = httpx.post(f"{url}/v1/{index}/search", json={"vector": vec, "hits": HITS, "quantized": True, **body},
                   timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def _hits(body):
    return [(c["docid"], c["score"]) for c in body["candidates"]]


@pytest.mark.parametrize("name,index,options", [
    ("exact", "exact", None),
    ("seismic", "seismic", None),
    ("seismic-pruned", "seismic", {"query_cut": CUT, "heap_factor": HEAP}),
])
def test_served_pre_encoded_queries_equal_the_cli_run_line_for_line(server, built, name, index, options):
    cli = read_run(built["runs"][name])
    assert len(cli) == N_QUERIES
    for qid, vec in built["queries"].items():
        body = _post(server["url"], index, vec, **({"options": options} if options else {}))
        assert body["index"] == index and body["query"] == {"vector": vec}
        assert _hits(body) == cli[qid], qid  # integer dot products: exact equality
        assert [c["rank"] for c in body["candidates"]] == list(range(1, len(cli[qid]) + 1))


def test_non_default_seismic_options_change_the_answer_where_the_cli_does(server, built):
    default, pruned, exact = (read_run(built["runs"][n]) for n in ("seismic", "seismic-pruned", "exact"))
    differ = [q for q in default if default[q] != pruned[q]]
    assert differ, "the pruned settings must change some queries' hits, or this test proves nothing"
    for qid in differ[:5]:
        vec = built["queries"][qid]
        a = _hits(_post(server["url"], "seismic", vec))
        b = _hits(_post(server["url"], "seismic", vec, options={"query_cut": CUT, "heap_factor": HEAP}))
        assert a != b and a == default[qid] and b == pruned[qid]
    # the default settings answer like exact search on most queries (Seismic is approximate)
    assert sum(default[q] == exact[q] for q in exact) >= 0.8 * len(exact)
    # a bad option is the searcher's own 400, and the server keeps serving
    vec = next(iter(built["queries"].values()))
    r = httpx.post(f"{server['url']}/v1/seismic/search", json={"vector": vec, "options": {"query_cut": 0}}, timeout=60)
    assert r.status_code == 400 and "query_cut" in r.json()["error"]
    r = httpx.post(f"{server['url']}/v1/seismic/search", json={"vector": vec, "options": {"nope": 1}}, timeout=60)
    assert r.status_code == 400 and "error" in r.json()
    assert _hits(_post(server["url"], "seismic", vec)) == default[next(iter(built["queries"]))]


def _workers_of(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _connections_of(pid: int, port: int) -> int:
    """Established TCP connections on ``port`` whose socket ``pid`` holds (from /proc, no tool needed)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name if hasattr(fd, "readlink") else str(fd.resolve().name)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    n = 0
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            f = line.split()
            if int(f[1].rsplit(":", 1)[1], 16) == port and f[3] == "01" and f[9] in inodes:
                n += 1
    return n


def test_workers_answer_like_the_cli_from_every_connection_and_sigterm_stops_them_all(built):
    """``--workers 2``: two processes on one port; every answer equals the CLI's, whichever process
    answers it, and SIGTERM to the parent ends both workers and the parent with status 0 within 10 s."""
    import signal

    d = built["dir"]
    proc, url, err = start_server(["--index", f"seismic={d / 'seismic'}", "--no-request-log", "--workers", "2"], d,
                                  name="workers", wait_s=120)
    try:
        workers = _workers_of(proc.pid)
        assert len(workers) == 2, workers
        assert "2 worker processes" in err.read_text()
        cli = read_run(built["runs"]["seismic"])

        async def many():
            # fresh connections as well as keep-alive ones: the kernel hands them to either worker
            async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=8)) as c:
                posts = [c.post(f"{url}/v1/seismic/search", json={"vector": vec, "hits": HITS, "quantized": True})
                         for vec in built["queries"].values()]
                return await asyncio.gather(*posts)

        for qid, r in zip(built["queries"], asyncio.run(many())):
            assert r.status_code == 200 and _hits(r.json()) == cli[qid], qid
        for qid, vec in list(built["queries"].items())[:10]:
            r = httpx.post(f"{url}/v1/seismic/search", json={"vector": vec, "hits": HITS, "quantized": True},
                           headers={"Connection": "close"}, timeout=60)
            assert _hits(r.json()) == cli[qid]
        # bad queries are a JSON 400 from every worker, and the next good query is answered
        first = next(iter(built["queries"].values()))
        for bad in ({"not-a-term": 3}, {t: 0 for t in first}):
            for _ in range(4):  # fresh connections: both workers
                r = httpx.post(f"{url}/v1/seismic/search", json={"vector": bad, "hits": HITS, "quantized": True},
                               headers={"Connection": "close"}, timeout=60)
                assert r.status_code == 400 and set(r.json()) == {"error"}, r.text
        qid, vec = next(iter(built["queries"].items()))
        r = httpx.post(f"{url}/v1/seismic/search", json={"vector": vec, "hits": HITS, "quantized": True}, timeout=60)
        assert r.status_code == 200 and _hits(r.json()) == cli[qid]
        # 8 keep-alive connections opened at once are spread 4 and 4 (the kernel alone gave 8/0 splits)
        import socket

        host, port = url[len("http://"):].rsplit(":", 1)
        time.sleep(0.5)  # the connections above are closed and counted down
        conns = [socket.create_connection((host, int(port)), timeout=30) for _ in range(8)]
        try:
            for c in conns:
                c.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            for c in conns:
                assert c.recv(65536).startswith(b"HTTP/1.1 200")
            assert sorted(_connections_of(pid, int(port)) for pid in workers) == [4, 4]
        finally:
            for c in conns:
                c.close()
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - t0 < 10
        for pid in workers:  # reaped by the parent: no process left behind
            assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_workers_start_up_errors_are_one_error_line_and_exit_2(built, tmp_path):
    """A port in use, an index every worker fails to load, --mcp-stdio with several workers: one line, exit 2."""
    import shutil
    import socket
    import subprocess

    def run(*args):
        p = subprocess.run([sys.executable, "-m", "pyserini_splare.serve", "--no-request-log", "--workers", "2", *args],
                           cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
        return p.returncode, [line for line in p.stderr.splitlines() if line.strip()]

    seismic = built["dir"] / "seismic"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        rc, err = run("--index", f"s={seismic}", "--port", str(s.getsockname()[1]))
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: cannot listen"), err
    broken = tmp_path / "broken"
    shutil.copytree(seismic, broken)
    index_file = next(f for f in broken.iterdir() if f.name.endswith(".seismic"))
    index_file.write_bytes(index_file.read_bytes()[:1000])  # the workers fail to load it, after the bind
    rc, err = run("--index", f"s={broken}", "--port", "0")
    errors = [line for line in err if line.startswith("error:")]
    assert rc == 2 and len(errors) == 1 and "cannot load the Seismic index" in errors[0], err
    assert not [line for line in err if "Traceback" in line]
    rc, err = run("--index", f"s={seismic}", "--mcp-stdio")
    assert rc == 2 and len(err) == 1 and err[0].startswith("error:") and "--workers" in err[0], err


def test_a_worker_that_dies_stops_the_service(built):
    """No half service: a worker killed while serving makes the parent stop the other and exit 1."""
    import signal

    d = built["dir"]
    proc, url, _ = start_server(["--index", f"seismic={d / 'seismic'}", "--no-request-log", "--workers", "2"], d,
                                name="dies", wait_s=120)
    try:
        workers = _workers_of(proc.pid)
        assert len(workers) == 2
        import os

        os.kill(workers[0], signal.SIGKILL)
        assert proc.wait(timeout=15) == 1
        deadline = time.time() + 10
        while Path(f"/proc/{workers[1]}").exists() and time.time() < deadline:
            time.sleep(0.1)
        assert not Path(f"/proc/{workers[1]}").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_workers_end_when_the_parent_is_killed(built):
    """SIGKILL to the parent (no handler runs): the workers still end, and nothing keeps the port."""
    import os
    import signal
    import socket

    d = built["dir"]
    proc, url, _ = start_server(["--index", f"seismic={d / 'seismic'}", "--no-request-log", "--workers", "2"], d,
                                name="orphans", wait_s=120)
    workers = _workers_of(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 15
    while any(Path(f"/proc/{w}").exists() for w in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{w}").exists() for w in workers)
    host, port = url[len("http://"):].rsplit(":", 1)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, int(port)))  # free again
