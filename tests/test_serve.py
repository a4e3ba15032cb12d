"""The search service against the CLI: same hits for the same queries, bad input, concurrency, SIGTERM.

One server (a subprocess, as users run it) per module serves CACM's BM25 index, a SPLADE-tiny Lucene
impact index and an exact index of the same vectors, with a pipeline; the reference is each stage's
own CLI run in this process (``search``, ``fusion``), read back from its TREC run file.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

# One server per module over indexes built with the JVM: the whole module is the slow tier.
pytestmark = pytest.mark.jvm

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

ROOT = Path(__file__).resolve().parents[1]
KEY = "test-key-123"
H = {"X-API-Key": KEY}
N_SPLADE_DOCS = 1000  # the first 1,000 CACM documents: enough hits for every topic, a quick encode


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def start_server(args, tmp: Path, name="server", wait_s=240):
    """Start ``python -m pyserini_splare.serve ARGS --port 0``; returns (process, base URL, stderr path)."""
    err = tmp / f"{name}.err"
    proc = subprocess.Popen([sys.executable, "-m", "pyserini_splare.serve", *args, "--port", "0"], cwd=tmp,
                            env=_env(), stdout=subprocess.DEVNULL, stderr=open(err, "w"))
    deadline = time.time() + wait_s
    while time.time() < deadline:
        m = re.search(r"on (http://[\d.]+:\d+)/", err.read_text())
        if m:
            return proc, m.group(1), err
        if proc.poll() is not None:
            raise AssertionError(f"server exited {proc.returncode}: {err.read_text()[-2000:]}")
        time.sleep(0.3)
    proc.kill()
    raise AssertionError(f"server did not start: {err.read_text()[-2000:]}")


def read_run(path) -> dict[str, list[tuple[str, float]]]:
    out: dict[str, list] = {}
    for line in Path(path).read_text().splitlines():
        q, _, d, r, s, _ = line.split()
        out.setdefault(q, []).append((d, float(s)))
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory, cacm_collection_dir, splade_tiny_path, shared_data):
    """CACM BM25 and SPLADE-tiny (Lucene impact, exact) indexes, and the CLI's runs on CACM's topics."""
    from pyserini_splare.corpus import read_html_tarball
    from pyserini_splare.encode.__main__ import main as encode_main
    from pyserini_splare.fusion.__main__ import main as fusion_main
    from pyserini_splare.index.__main__ import main as index_main
    from pyserini_splare.search.__main__ import main as search_main

    d = tmp_path_factory.mktemp("serve")
    os.environ.setdefault("PYSERINI_SPLARE_DATA", str(shared_data))
    corpus = d / "cacm.jsonl"
    with open(corpus, "w") as f:
        for i, doc in enumerate(read_html_tarball(shared_data / "cacm" / "cacm.tar.gz")):
            if i == N_SPLADE_DOCS:
                break
            f.write(json.dumps({"id": doc.id, "contents": doc.text}) + "\n")
    spec = f"splade:{splade_tiny_path}"
    assert index_main(["--backend", "bm25", "--collection", "HtmlCollection", "--input", str(cacm_collection_dir),
                       "--index", str(d / "cacm.bm25")]) == 0
    assert encode_main(["--corpus", str(corpus), "--encoder", spec, "--output", str(d / "vec")]) == 0
    assert index_main(["--backend", "lucene", "--input", str(d / "vec"), "--index", str(d / "splade.lucene")]) == 0
    assert index_main(["--backend", "exact", "--input", str(d / "vec"), "--index", str(d / "splade.exact")]) == 0
    runs = {}
    for name, extra in (("cacm", []), ("splade", ["--encoder", spec]), ("exact", ["--encoder", spec])):
        index = {"cacm": "cacm.bm25", "splade": "splade.lucene", "exact": "splade.exact"}[name]
        for hits in (10, 1000):
            out = d / f"{name}.{hits}.txt"
            assert search_main(["--index", str(d / index), "--topics", "cacm", "--output", str(out),
                                "--hits", str(hits), *extra]) == 0
            runs[name, hits] = out
    fused = d / "rrf.txt"
    assert fusion_main(["--runs", str(runs["cacm", 1000]), str(runs["splade", 1000]), "--method", "rrf",
                        "--rrf.k", "60", "--output", str(fused)]) == 0
    runs["hybrid", 10] = fused
    (d / "serve.yaml").write_text(
        "indexes:\n"
        f"  cacm: {d / 'cacm.bm25'}\n"
        f"  splade: {{path: {d / 'splade.lucene'}}}\n"
        f"  exact: {{path: {d / 'splade.exact'}}}\n"
        "pipelines:\n"
        "  hybrid: rrf(cacm, splade, k=60)\n"
        "server:\n"
        "  max_queue: 200\n")
    from pyserini_splare.topics import get_topics

    return {"dir": d, "runs": runs, "topics": get_topics("cacm"), "spec": spec}


@pytest.fixture(scope="module")
def server(built):
    proc, url, err = start_server(["--config", str(built["dir"] / "serve.yaml"), "--api-key", KEY], built["dir"])
    yield {"proc": proc, "url": url, "err": err}
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _get(url, path, **params):
    return httpx.get(url + path, params=params, headers=H, timeout=60)


@pytest.mark.parametrize("name", ["cacm", "splade", "exact"])
def test_served_hits_equal_the_cli_run_for_every_cacm_query(server, built, name):
    cli = read_run(built["runs"][name, 10])
    topics = built["topics"]
    assert len(cli) >= 50
    for qid, text in topics.items():
        r = _get(server["url"], f"/v1/{name}/search", query=text, hits=10)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["api"] == "v1" and body["index"] == name and body["query"] == {"text": text}
        got = [(c["docid"], c["score"]) for c in body["candidates"]]
        want = cli.get(qid, [])
        assert [d for d, _ in got] == [d for d, _ in want], qid
        assert [round(s, 4) for _, s in got] == pytest.approx([s for _, s in want], abs=1e-4), qid
        assert [c["rank"] for c in body["candidates"]] == list(range(1, len(got) + 1))


def test_pipeline_equals_the_fusion_cli_run_line_for_line(server, built):
    cli = read_run(built["runs"]["hybrid", 10])
    for qid, text in list(built["topics"].items())[:20]:
        got = _get(server["url"], "/v1/hybrid/search", query=text, hits=10).json()["candidates"]
        want = cli[qid][:10]
        assert [(c["docid"], round(c["score"], 6)) for c in got] == [(d, round(s, 6)) for d, s in want], qid


def test_48_concurrent_requests_equal_sequential_answers(server, built):
    texts = list(built["topics"].values())[:16]
    jobs = [(name, t) for t in texts for name in ("cacm", "splade", "exact")]
    assert len(jobs) == 48
    seq = [_get(server["url"], f"/v1/{n}/search", query=t, hits=20).json() for n, t in jobs]

    async def burst():
        async with httpx.AsyncClient(headers=H, timeout=120) as c:
            # a distinct hits value than the sequential pass: answers come from the searchers, not the cache
            rs = await asyncio.gather(*(c.get(f"{server['url']}/v1/{n}/search", params={"query": t, "hits": 21})
                                        for n, t in jobs))
        return rs

    rs = asyncio.run(burst())
    assert all(r.status_code == 200 for r in rs)
    for r, s in zip(rs, seq):
        assert [(c["docid"], c["score"]) for c in r.json()["candidates"]][:20] == \
               [(c["docid"], c["score"]) for c in s["candidates"]]


def test_post_pre_encoded_query_and_explain_add_up_to_the_score(server, built):
    url = server["url"]
    vec = {"parallel": 1.2, "computation": 0.9, "algorithm": 0.5}
    r = httpx.post(f"{url}/v1/splade/search", json={"vector": vec, "hits": 5, "explain": True}, headers=H)
    assert r.status_code == 200, r.text
    cands = r.json()["candidates"]
    assert cands and cands[0]["doc"]
    # independent reference: the query quantized at the index's scale (100) dotted with the stored vectors
    from pyserini_splare.formats.vectors_reader import iter_vectors

    docs = dict(iter_vectors(built["dir"] / "vec"))
    scale = 100
    q = {t: round(w * scale) for t, w in vec.items()}
    for c in cands:
        dot = sum(q[t] * docs[c["docid"]].get(t, 0) for t in q)
        assert c["score"] == dot
        assert sum(e["contribution"] for e in c["explain"]) == pytest.approx(dot)
        assert {e["term"] for e in c["explain"]} == {t for t in q if t in docs[c["docid"]]}
    # BM25: the per-term weights add up to the hit's score
    r = httpx.post(f"{url}/v1/cacm/search", json={"query": "parallel computation", "hits": 3, "explain": True}, headers=H)
    for c in r.json()["candidates"]:
        assert c["explain"] and sum(e["contribution"] for e in c["explain"]) == pytest.approx(c["score"], rel=1e-4)


@pytest.mark.slow
def test_an_index_whose_vectors_moved_is_served_and_explain_is_a_404(built, tmp_path):
    """The vectors folder an index records is gone (moved after the build): searches are served, the
    start-up log says so in one warning line (no traceback from the background reader), and explain,
    which needs the stored vectors, is a JSON 404 naming the folder."""
    import shutil

    from pyserini_splare.index.__main__ import main as index_main

    vec = tmp_path / "vec"
    shutil.copytree(built["dir"] / "vec", vec)
    assert index_main(["--backend", "exact", "--input", str(vec), "--index", str(tmp_path / "moved.exact")]) == 0
    shutil.rmtree(vec)
    proc, url, err = start_server(["--index", f"moved={tmp_path / 'moved.exact'}", "--warmup", "0"], tmp_path, "moved")
    try:
        vector = {"parallel": 1.2, "computation": 0.9}
        r = httpx.post(f"{url}/v1/moved/search", json={"vector": vector, "hits": 3})
        assert r.status_code == 200 and len(r.json()["candidates"]) == 3
        r = httpx.post(f"{url}/v1/moved/search", json={"vector": vector, "hits": 3, "explain": True})
        assert r.status_code == 404 and str(vec) in r.json()["error"], r.text
        assert httpx.post(f"{url}/v1/moved/search", json={"vector": vector, "hits": 1}).status_code == 200
        log = err.read_text()
        assert "Traceback" not in log
        assert sum(str(vec) in line and "WARNING" in line for line in log.splitlines()) == 1, log
    finally:
        proc.kill()
        proc.wait()


def test_indexes_doc_health_metrics_openapi(server):
    url = server["url"]
    ix = {i["name"]: i for i in _get(url, "/v1/indexes").json()["indexes"]}
    assert ix["cacm"]["backend"] == "bm25" and ix["cacm"]["documents"] == 3204
    assert ix["splade"]["backend"] == "lucene" and ix["splade"]["encoder"].startswith("splade:")
    assert ix["splade"]["documents"] == N_SPLADE_DOCS and ix["hybrid"]["pipeline"] == "rrf(cacm, splade, k=60)"
    doc = _get(url, "/v1/cacm/doc/CACM-0001").json()
    assert doc["docid"] == "CACM-0001" and "International Algebraic Language" in doc["doc"]
    assert httpx.get(url + "/healthz").json()["status"] == "ok"
    m = _get(url, "/metrics").text
    assert 'pyserini_splare_requests_total{route="/v1/{index}/search",status="200"}' in m
    assert "pyserini_splare_request_seconds_bucket" in m and "pyserini_splare_queue_depth" in m
    assert "/v1/{index}/search" in _get(url, "/openapi.json").json()["paths"]


BAD = [
    ("GET", "/v1/nope/search", {"query": "a"}, None, 404),
    ("GET", "/v1/nope-pipeline/search", {"query": "a"}, None, 404),
    ("GET", "/v1/cacm/search", {"query": "a", "hits": "0"}, None, 400),
    ("GET", "/v1/cacm/search", {"query": "a", "hits": "-3"}, None, 400),
    ("GET", "/v1/cacm/search", {"query": "a", "hits": "ten"}, None, 400),
    ("GET", "/v1/cacm/search", {"query": "a", "hits": "100000"}, None, 400),
    ("GET", "/v1/cacm/search", {}, None, 400),
    ("GET", "/v1/cacm/search", {"query": "x" * 20_000, "hits": "3"}, None, 413),
    ("POST", "/v1/splade/search", None, b'{"query": "a", ', 400),
    ("POST", "/v1/splade/search", None, b'[1, 2]', 400),
    ("POST", "/v1/splade/search", None, json.dumps({"query": "x" * (1 << 20)}).encode(), 413),
    ("POST", "/v1/splade/search", None, b'{"vector": {"parallel": NaN}}', 400),
    ("POST", "/v1/splade/search", None, b'{"vector": {"parallel": -1.0}}', 400),
    ("POST", "/v1/splade/search", None, b'{"vector": {"L131071": 1.0}}', 400),
    ("POST", "/v1/splade/search", None, b'{"vector": {}}', 400),
    ("POST", "/v1/splade/search", None, b'{"query": "a", "hits": 0}', 400),
    ("POST", "/v1/splade/search", None, b'{"query": "a", "hits": "many"}', 400),
    ("POST", "/v1/splade/search", None, b'{"query": "a", "options": {"heap_factor": 0.5}}', 400),
    ("POST", "/v1/splade/search", None, b'{"query": "a", "extra": 1}', 400),
    ("POST", "/v1/cacm/search", None, b'{"vector": {"parallel": 1.0}}', 400),
    ("POST", "/v1/hybrid/search", None, b'{"query": "a", "explain": true}', 400),
    ("GET", "/v1/cacm/doc/NOT-A-DOC", {}, None, 404),
]


@pytest.mark.parametrize("method,path,params,body,status", BAD, ids=[f"{i}-{b[1]}" for i, b in enumerate(BAD)])
def test_bad_input_is_a_json_4xx_and_the_server_keeps_serving(server, method, path, params, body, status):
    url = server["url"]
    r = httpx.request(method, url + path, params=params, content=body, headers={**H, "Content-Type": "application/json"},
                      timeout=60)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert isinstance(err, str) and err and "Traceback" not in r.text
    assert _get(url, "/v1/cacm/search", query="parallel", hits=1).status_code == 200


def test_a_1_mb_query_string_is_a_json_413(server):
    """httpx refuses a 1 MB URL, so the request is written on a socket as any client could send it."""
    host, port = server["url"][len("http://"):].split(":")
    req = (f"GET /v1/cacm/search?hits=3&query={'x' * (1 << 20)} HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {KEY}\r\n"
           "Connection: close\r\n\r\n").encode()
    with socket.create_connection((host, int(port)), timeout=60) as s:
        s.sendall(req)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.split()[1] == b"413" and "error" in json.loads(body)
    assert _get(server["url"], "/v1/cacm/search", query="parallel", hits=1).status_code == 200


def test_api_key_missing_or_wrong(server):
    url = server["url"] + "/v1/cacm/search"
    r = httpx.get(url, params={"query": "a"})
    assert r.status_code == 401 and "error" in r.json()
    r = httpx.get(url, params={"query": "a"}, headers={"X-API-Key": "wrong"})
    assert r.status_code == 403 and "error" in r.json()
    r = httpx.get(url, params={"query": "a"}, headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200


def test_lucene_indexes_are_warmed_up_before_serving(server):
    """Both JVM indexes were searched with queries of their own terms before the "serving" line (the hits
    that follow still equal the CLI's: test_served_hits_equal_the_cli_run_for_every_cacm_query)."""
    err = server["err"].read_text()
    served = err.index("serving ")
    for name in ("cacm", "splade"):
        m = re.search(rf"warmed up index {name}: ([\d,]+) searches of its own terms in ([\d.]+) s", err)
        assert m and m.start() < served, err[:2000]
        assert int(m.group(1).replace(",", "")) >= 32 and float(m.group(2)) < 5 + 2  # 10 s shared by the two
    assert "warmed up index exact" not in err  # no JVM, nothing to compile


def test_warmup_queries_are_terms_of_the_index(built):
    from pyserini_splare.search import QuantizedQuery, open_searcher

    bm25 = open_searcher(str(built["dir"] / "cacm.bm25"))
    texts = bm25.warmup_queries(64, seed=1)
    assert len(texts) == 64 and texts == bm25.warmup_queries(64, seed=1)  # the same queries every start
    assert all(2 <= len(t.split()) <= 24 for t in texts)
    found = bm25.batch_search({str(i): t for i, t in enumerate(texts)}, k=10)
    assert sum(bool(h) for h in found.values()) >= 60  # the index's own terms: nearly every query finds documents
    impact = open_searcher(str(built["dir"] / "splade.lucene"))
    qs = impact.warmup_queries(16)
    assert all(isinstance(q, QuantizedQuery) and all(1 <= w <= 100 for w in q.values()) for q in qs)
    assert all(impact.batch_search({"q": q}, k=5)["q"] for q in qs)


def test_request_log_is_json_lines(server):
    lines = [ln for ln in server["err"].read_text().splitlines() if ln.startswith("{")]
    rec = json.loads(lines[-1])
    assert {"ts", "method", "path", "status", "ms"} <= set(rec)


async def _mcp_session_calls(s, text, qid, rest):
    """list_tools, search (a known and an unknown index) and eval_hits through one MCP client session."""
    await s.initialize()
    tools = {t.name for t in (await s.list_tools()).tools}
    res = await s.call_tool("search", {"query": text, "index": "cacm", "hits": 5})
    bad = await s.call_tool("search", {"query": text, "index": "nope", "hits": 5})
    ev = await s.call_tool("eval_hits", {"qrels": "cacm", "query_id": qid, "metric": "P@5",
                                         "hits": {c["docid"]: c["score"] for c in rest}})
    return tools, res, bad, ev


def _check_mcp_answers(tools, res, bad, ev, qid, rest):
    # P@5 written out from the qrels file: relevant documents among the five hits, over 5
    rel = {ln.split()[2] for ln in (Path(os.environ["PYSERINI_SPLARE_DATA"]) / "cacm" / "qrels.cacm.txt").read_text()
           .splitlines() if ln.split()[0] == qid and int(ln.split()[3]) > 0}
    assert ev.structured_content["result"] == pytest.approx(sum(c["docid"] in rel for c in rest) / 5)
    assert {"search", "get_document", "list_indexes", "explain", "fuse_search_results", "eval_hits"} <= tools
    got = res.structured_content["result"]
    assert [(c["docid"], c["score"], c["rank"], c["doc"]) for c in got] == \
           [(c["docid"], c["score"], c["rank"], c["doc"]) for c in rest]
    assert bad.is_error


def _streamable_http(url, headers=None):
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    return streamable_http_client(url + "/mcp/", http_client=create_mcp_http_client(headers=headers))


def test_mcp_client_over_streamable_http_lists_tools_and_searches_like_rest(server, built):
    pytest.importorskip("mcp")
    from mcp import ClientSession

    qid = "1"
    text = built["topics"][qid]
    rest = _get(server["url"], "/v1/cacm/search", query=text, hits=5).json()["candidates"]

    async def go():
        async with _streamable_http(server["url"], H) as (r, w):
            async with ClientSession(r, w) as s:
                return await _mcp_session_calls(s, text, qid, rest)

    _check_mcp_answers(*asyncio.run(go()), qid, rest)

    # /mcp/ sits behind the same API key as REST
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}
    accept = {"Accept": "application/json, text/event-stream"}
    r = httpx.post(server["url"] + "/mcp/", json=init, headers=accept, timeout=30)
    assert r.status_code == 401 and "error" in r.json()
    r = httpx.post(server["url"] + "/mcp/", json=init, headers={**accept, **H}, timeout=30)
    assert r.status_code == 200


def test_mcp_over_stdio_and_http_from_one_process(built, tmp_path):
    """``--mcp-stdio``: an MCP client over stdio, REST and an MCP client over streamable HTTP all talk to
    the same process (the HTTP address it prints on stderr), and agree; closing stdin stops it."""
    pytest.importorskip("mcp")
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    qid = "1"
    text = built["topics"][qid]
    err = tmp_path / "stdio.err"

    async def go():
        params = StdioServerParameters(command=sys.executable, env=_env(), cwd=str(built["dir"]),
                                       args=["-m", "pyserini_splare.serve", "--index", f"cacm={built['dir'] / 'cacm.bm25'}",
                                             "--mcp-stdio", "--no-request-log", "--port", "0"])
        with open(err, "w") as errlog:
            async with stdio_client(params, errlog=errlog) as (r, w):
                async with ClientSession(r, w) as s:
                    await s.initialize()  # answered once the indexes are loaded: the HTTP side is up too
                    url = None
                    for _ in range(100):
                        m = re.search(r"on (http://[\d.]+:\d+)/", err.read_text())
                        if m:
                            url = m.group(1)
                            break
                        await asyncio.sleep(0.2)
                    assert url, err.read_text()[-2000:]
                    async with httpx.AsyncClient(timeout=60) as c:
                        for _ in range(100):
                            try:
                                if (await c.get(url + "/healthz")).status_code == 200:
                                    break
                            except httpx.TransportError:
                                await asyncio.sleep(0.2)
                        rest = (await c.get(url + "/v1/cacm/search", params={"query": text, "hits": 5})).json()["candidates"]
                    over_stdio = await _mcp_session_calls(s, text, qid, rest)
                    async with _streamable_http(url) as (hr, hw):
                        async with ClientSession(hr, hw) as hs:
                            over_http = await _mcp_session_calls(hs, text, qid, rest)
        return url, rest, over_stdio, over_http

    url, rest, over_stdio, over_http = asyncio.run(go())
    _check_mcp_answers(*over_stdio, qid, rest)
    _check_mcp_answers(*over_http, qid, rest)
    # stdin closed: the HTTP side stopped with it
    time.sleep(1)
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/healthz", timeout=5)
    assert "MCP stdio closed" in err.read_text()


def test_web_page_in_a_real_browser_highlights_matched_terms(server, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Debian chromium not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(server["url"] + "/")
        page.click("summary")
        page.fill("#key", KEY)  # the page keeps it (localStorage) and lists the indexes
        page.wait_for_selector("#target option[value=splade]", state="attached")
        page.select_option("#target", "splade")
        page.fill("#q", "parallel computation algorithms")
        page.click("button[type=submit]")
        page.wait_for_selector(".hit mark", timeout=30000)
        marks = [m.lower() for m in page.locator(".hit mark").all_inner_texts()]
        hits = page.locator(".hit").count()
        page.screenshot(path=str(tmp_path / "serve.png"), full_page=False)
        if os.environ.get("PYSERINI_SPLARE_DOC_SCREENSHOT"):
            page.screenshot(path=str(ROOT / "docs" / "img" / "serve.png"), full_page=False)
        browser.close()
    assert hits == 10
    assert any(m.startswith("parallel") for m in marks) and (tmp_path / "serve.png").stat().st_size > 10_000


def test_startup_problems_are_one_error_line_and_exit_2(tmp_path, built):
    def run(*args):
        p = subprocess.run([sys.executable, "-m", "pyserini_splare.serve", *args], cwd=tmp_path, env=_env(),
                           capture_output=True, text=True, timeout=120)
        return p.returncode, p.stderr.strip().splitlines()

    rc, err = run("--index", f"x={tmp_path / 'missing'}")
    assert rc == 2 and len(err) == 1 and err[0].startswith("error:") and "does not exist" in err[0]
    (tmp_path / "bad.yaml").write_text("indexes: [unclosed\n")
    rc, err = run("--config", str(tmp_path / "bad.yaml"))
    assert rc == 2 and len(err) == 1 and err[0].startswith("error:")
    rc, err = run("--index", f"cacm={built['dir'] / 'cacm.bm25'}", "--warmup", "-1")
    assert rc == 2 and len(err) == 1 and err[0].startswith("error:") and "warmup_s" in err[0]
    (tmp_path / "cycle.yaml").write_text(f"indexes: {{a: {built['dir'] / 'cacm.bm25'}}}\npipelines:\n  p: rrf(a, p)\n")
    rc, err = run("--config", str(tmp_path / "cycle.yaml"))
    assert rc == 2 and len(err) == 1 and "refers to itself" in err[0]
    # a corpus the config names that is not there: refused at start, not a 404 on every search later
    (tmp_path / "corpus.yaml").write_text(f"indexes: {{e: {{path: {built['dir'] / 'splade.exact'}, "
                                          f"corpus: {tmp_path / 'gone.jsonl'}}}}}\n")
    rc, err = run("--config", str(tmp_path / "corpus.yaml"), "--port", "0")
    assert rc == 2 and len(err) == 1 and err[0].startswith("error:") and "gone.jsonl is not there" in err[0], err
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        rc, err = run("--index", f"cacm={built['dir'] / 'cacm.bm25'}", "--port", str(port))
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: cannot listen")


def test_queue_full_is_429_and_timeout_is_504(built, tmp_path):
    # the exact index only (no JVM): a slow micro-batch window holds one request while others arrive
    proc, url, _ = start_server(["--index", f"exact={built['dir'] / 'splade.exact'}", "--max-queue", "1",
                                 "--batch-wait-ms", "1500", "--timeout", "5"], tmp_path, "q")
    try:
        async def burst():
            async with httpx.AsyncClient(timeout=60) as c:
                return await asyncio.gather(*(c.get(f"{url}/v1/exact/search", params={"query": f"q{i} parallel"})
                                              for i in range(4)))
        codes = sorted(r.status_code for r in asyncio.run(burst()))
        assert codes.count(200) >= 1 and 429 in codes
    finally:
        proc.kill()
        proc.wait()
    proc, url, _ = start_server(["--index", f"exact={built['dir'] / 'splade.exact'}", "--batch-wait-ms", "2000",
                                 "--timeout", "0.3"], tmp_path, "t")
    try:
        r = httpx.get(f"{url}/v1/exact/search", params={"query": "parallel"}, timeout=30)
        assert r.status_code == 504 and "error" in r.json()
    finally:
        proc.kill()
        proc.wait()


def test_sigterm_finishes_in_flight_requests_and_exits_0_within_10_s(server, built):
    """Last test of the module: it stops the shared server."""
    import threading

    proc, url = server["proc"], server["url"]
    texts = list(built["topics"].values())
    results = []

    def client():
        with httpx.Client(headers=H, timeout=30) as c:
            for t in texts[:30]:
                try:
                    results.append(c.get(f"{url}/v1/splade/search", params={"query": t + " x", "hits": 50}).status_code)
                except httpx.TransportError:  # refused once the server stopped accepting
                    results.append("closed")
                    return

    th = threading.Thread(target=client)
    th.start()
    time.sleep(0.3)
    t0 = time.time()
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=15)
    elapsed = time.time() - t0
    th.join(30)
    assert rc == 0 and elapsed < 10, (rc, elapsed)
    assert results and all(r in (200, "closed") for r in results), results  # none cut off with an error


def test_help_is_light_and_teaches():
    heavy = ("torch", "jnius", "faiss", "seismic", "ranx", "transformers", "pyserini", "numba", "fastapi", "mcp")
    probe = ("import runpy, sys\nsys.argv = ['prog', '--help']\ntry:\n    runpy.run_module('pyserini_splare.serve', "
             "run_name='__main__')\nexcept SystemExit:\n    pass\n"
             f"print('HEAVY=' + ','.join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)\n")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=_env())
    assert r.stderr.rsplit("HEAVY=", 1)[1].strip() == ""
    assert "usage:" in r.stdout and "examples:" in r.stdout and "--index NAME=DIR" in r.stdout


def _tiny_qwen3_fixture():
    """test_rerank.py's tiny Qwen3 reranker fixture (random weights, tokenizer trained there), reused."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_serve_rerank_fixtures", Path(__file__).parent / "test_rerank.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.tiny_qwen3_dir


tiny_qwen3_dir = _tiny_qwen3_fixture()


def test_rerank_pipeline_equals_the_rerank_cli_run(built, tiny_qwen3_dir, tmp_path, shared_data):
    """rerank(cacm, depth=20) served vs ``rerank --depth 20`` on the search CLI's BM25 run: top 10 equal."""
    from pyserini_splare.rerank.__main__ import main as rerank_main

    qids = list(built["topics"])[:5]
    first = read_run(built["runs"]["cacm", 1000])
    small = tmp_path / "first.txt"
    small.write_text("".join(f"{q} Q0 {d} {i + 1} {s} bm25\n" for q in qids for i, (d, s) in enumerate(first[q])))
    out = tmp_path / "rr.txt"
    assert rerank_main(["--run", str(small), "--topics", "cacm", "--corpus", str(shared_data / "cacm" / "cacm.tar.gz"),
                        "--model", str(tiny_qwen3_dir), "--depth", "20", "--output", str(out)]) == 0
    cli = read_run(out)
    (tmp_path / "rr.yaml").write_text(f"indexes:\n  cacm: {built['dir'] / 'cacm.bm25'}\npipelines:\n"
                                      f"  rr: rerank(cacm, depth=20)\nreranker: {{model: {tiny_qwen3_dir}}}\n")
    # the first request loads the reranker: on a busy machine that alone took 15 s
    proc, url, _ = start_server(["--config", str(tmp_path / "rr.yaml"), "--timeout", "120"], tmp_path, "rr")
    try:
        for q in qids:
            got = httpx.get(f"{url}/v1/rr/search", params={"query": built["topics"][q], "hits": 10}, timeout=120).json()
            assert [(c["docid"], round(c["score"], 5)) for c in got["candidates"]] == \
                   [(d, round(s, 5)) for d, s in cli[q][:10]], q
    finally:
        proc.kill()
        proc.wait()
