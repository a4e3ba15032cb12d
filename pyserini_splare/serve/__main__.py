"""python -m pyserini_splare.serve: serve indexes and pipelines over REST (Pyserini's v1), MCP and a web page."""

from __future__ import annotations

import argparse
import os
import sys

from .._argtypes import positive_int
from .._errors import UsageError

EPILOG = """\
Each --index is opened once; a sparse index encodes text queries with the encoder it records (its
vectors' meta.json), a BM25 index searches the text. Pipelines (rrf(a, b, k=60), rerank(x, depth=100))
come from --config (see docs/serve.md).

examples:
  # the README's CACM BM25 index on http://127.0.0.1:8081
  python -m pyserini_splare.serve --index cacm=indexes/cacm.bm25
  curl 'http://127.0.0.1:8081/v1/cacm/search?query=parallel+computation&hits=10'
  # a pre-encoded query, and why each hit matched
  curl -X POST http://127.0.0.1:8081/v1/splade/search -H 'Content-Type: application/json' \\
       -d '{"query": "parallel computation", "hits": 5, "explain": true}'
  # indexes, pipelines and limits from a file; an API key from the environment
  PYSERINI_SPLARE_API_KEYS=secret python -m pyserini_splare.serve --config serve.yaml
  # MCP over stdio for an agent, and REST + MCP over streamable HTTP at /mcp/ from the same process
  python -m pyserini_splare.serve --index cacm=indexes/cacm.bm25 --mcp-stdio --port 8081
  # a Seismic index on two cores: two processes on one port, sharing the loaded index
  python -m pyserini_splare.serve --index splare=indexes/msmarco.seismic --workers 2
  # a quick start for tests: no JIT warm-up of the Lucene/BM25 indexes (default: up to 10 s)
  python -m pyserini_splare.serve --index cacm=indexes/cacm.bm25 --warmup 0

Start-up problems (a missing index, a port in use, a bad config) are one `error:` line and exit 2.
SIGTERM or Ctrl-C: stop accepting, finish the requests in flight, exit 0.
"""

API_KEYS_ENV = "PYSERINI_SPLARE_API_KEYS"  # comma-separated
JVM_SWITCH_INTERVAL = 0.0002  # seconds: sys.setswitchinterval of a process serving a Lucene or BM25 index


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pyserini_splare.serve", epilog=EPILOG,
                                description="Serve indexes over Pyserini's REST v1 API, MCP and a web page.",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--index", action="append", default=[], metavar="NAME=DIR", help="an index to serve (repeatable)")
    p.add_argument("--config", help="YAML with indexes, pipelines, reranker and server settings (docs/serve.md)")
    p.add_argument("--host", default=None, help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=None, help="port (default 8081, Pyserini's; 0 picks a free one)")
    p.add_argument("--api-key", action="append", default=None,
                   help=f"require this key as X-API-Key or Bearer (repeatable; or ${API_KEYS_ENV}, comma-separated)")
    p.add_argument("--cors-origin", action="append", default=None, dest="cors_origins", metavar="CORS_ORIGIN", help="allow this browser origin (CORS is off by default)")
    p.add_argument("--timeout", type=float, default=None, dest="timeout_s", metavar="TIMEOUT",
                   help="seconds per request before a 504 (default 30)")
    p.add_argument("--max-queue", type=int, default=None, help="requests in flight before 429 (default 256)")
    p.add_argument("--max-hits", type=int, default=None, help="largest hits a request may ask (default 1000)")
    p.add_argument("--max-query-chars", type=int, default=None, help="longest query text (default 10000)")
    p.add_argument("--cache-size", type=int, default=None, help="LRU cache entries (default 1024; 0 disables)")
    p.add_argument("--batch-wait-ms", type=float, default=None,
                   help="how long a query encoder waits to grow a micro-batch of texts (default 3; searches do not wait)")
    p.add_argument("--threads", type=int, default=None, help="searcher threads per batch (default 1)")
    p.add_argument("--device", default=None, help="torch device of the query encoders (default cpu)")
    p.add_argument("--warmup", type=float, default=None, dest="warmup_s", metavar="SECONDS",
                   help="before serving a Lucene or BM25 index, search it with 20,000 queries drawn from its terms, "
                        "for at most this long, so that the JVM has compiled the search before the first request "
                        "(default 10; 0: off; shared by the JVM's indexes; --workers: each process warms its own)")
    p.add_argument("--java-heap", default=None, help="JVM heap for Lucene (default 4g or $PYSERINI_SPLARE_JAVA_HEAP)")
    p.add_argument("--data-dir", default=None, help="topics and qrels folder for the eval tools ($PYSERINI_SPLARE_DATA)")
    p.add_argument("--mcp-stdio", action="store_true",
                   help="also serve MCP over stdin/stdout, beside the HTTP server (REST, MCP at /mcp/, the page); "
                        "the process ends when stdin closes")
    p.add_argument("--no-request-log", action="store_true", help="do not log a JSON line per request on stderr")
    p.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="server processes sharing the port (default 1). More than 1 pays when searches hold "
                        "Python's lock, as Seismic's do; a Seismic index is shared, other indexes and encoders "
                        "are loaded by each process; the cache, limits and /metrics are per process "
                        "(docs/serve.md)")
    return p


def _config(args):
    from .config import SERVER_KEYS, ServeConfig, check, load_yaml, parse_index_flag

    cfg = ServeConfig()
    if args.config:
        load_yaml(args.config, cfg)
    for v in args.index:
        spec = parse_index_flag(v)
        cfg.indexes[spec.name] = spec
    for name in SERVER_KEYS:  # the flags are named (dest) as the settings they override
        v = getattr(args, name, None)
        if v is not None:
            setattr(cfg, name, v)
    keys = list(args.api_key or []) + [k.strip() for k in os.environ.get(API_KEYS_ENV, "").split(",") if k.strip()]
    if keys:
        cfg.api_keys = list(cfg.api_keys) + keys
    if args.no_request_log:
        cfg.log_requests = False
    check(cfg)
    return cfg


def _bind(host: str, port: int):
    """Bind before loading anything: a port in use is an error in a second, not after the JVM start."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it Nagle + delayed ACKs add ~40 ms to every keep-alive request (measured here).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _logging(enabled: bool) -> None:
    import logging

    h = logging.StreamHandler(sys.stderr)
    h.setFormatter(logging.Formatter("%(message)s"))
    access = logging.getLogger("pyserini_splare.serve.access")
    access.addHandler(h)
    access.setLevel(logging.INFO if enabled else logging.WARNING)
    access.propagate = False
    main = logging.getLogger("pyserini_splare.serve")
    if not main.handlers:
        mh = logging.StreamHandler(sys.stderr)
        mh.setFormatter(logging.Formatter("serve: %(levelname)s %(message)s"))
        main.addHandler(mh)
        main.setLevel(logging.INFO)


def serve(argv=None) -> int:
    args = build_parser().parse_args(argv)
    cfg = _config(args)
    if cfg.workers > 1 and args.mcp_stdio:
        raise UsageError("--mcp-stdio talks to one agent from one process: leave --workers at 1")
    if cfg.workers > 1 and not hasattr(os, "fork"):
        raise UsageError("--workers above 1 needs fork() (Linux, macOS); run one process per port instead")
    _logging(cfg.log_requests)
    sock = _bind(cfg.host, cfg.port)
    if cfg.workers > 1:
        from . import core
        from .processes import serve_workers

        shared = core.open_before_fork(cfg.indexes.values())  # one copy of a Seismic index for all workers
        return serve_workers(cfg.workers, sock,
                             lambda ready, balancer: _serve_one(cfg, sock, ready=ready, opened=shared, balancer=balancer))
    return _serve_one(cfg, sock, stdio=args.mcp_stdio)


def _serve_one(cfg, sock, stdio: bool = False, ready=None, opened=None, balancer=None) -> int:
    """Load everything and serve on ``sock`` until SIGTERM; ``ready()`` (a worker process) instead of the
    "serving ... on URL" line once loaded; ``opened``: indexes already open; ``balancer``: a worker's
    accept loop (processes.Balancer)."""
    from .service import Service

    service = Service(cfg)
    try:
        service.load(opened)
        if service.uses_jvm:
            # The JVM thread waits up to the switch interval for Python's lock behind a busy event loop
            # (docs/serve.md, "Lucene batches are one JNI call")
            sys.setswitchinterval(JVM_SWITCH_INTERVAL)
        from .mcp_server import build_mcp

        mcp = build_mcp(service)
        return _serve_http(service, mcp, sock, stdio=stdio, ready=ready, balancer=balancer)
    finally:
        service.close()


def _serve_http(service, mcp, sock, stdio: bool = False, ready=None, balancer=None) -> int:
    import asyncio
    import contextlib
    import logging
    import signal

    import uvicorn

    from .rest import create_app

    @contextlib.asynccontextmanager
    async def lifespan(app):
        async with mcp.session_manager.run():
            yield

    mcp_app = mcp.streamable_http_app(streamable_http_path="/", host=service.config.host)
    app = create_app(service, mcp_app=mcp_app, lifespan=lifespan)
    # httptools and uvloop when installed (docs/serve.md, "Per-request cost"). A 1 MB query string gets a
    # JSON 413 either way, not the parser's plain-text 400 (h11: a large event limit; httptools: _httptools_protocol).
    http = _httptools_protocol() if _importable("httptools") else "h11"
    loop = "uvloop" if _importable("uvloop") else "asyncio"
    config = uvicorn.Config(app, log_config=None, access_log=False, http=http, loop=loop, lifespan="on",
                            h11_max_incomplete_event_size=4 << 20, timeout_graceful_shutdown=8)
    server = uvicorn.Server(config)
    if ready is None:
        from .processes import serving_line

        print(f"serving {serving_line(service.targets(), sock.getsockname())}", file=sys.stderr, flush=True)
    # uvicorn re-raises a captured SIGTERM/SIGINT after its graceful shutdown; a handler of ours
    # receives it, so the process exits 0 instead of dying by the signal.
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: None)
    if stdio:
        # One event loop, one MCPServer: the SDK's stdio transport (``run_stdio_async``) is a coroutine
        # like uvicorn's ``serve``, so both run side by side; stdin closing ends the HTTP server too.
        # The loop is left open on purpose: the stdio reader is a thread blocked in ``stdin.read``
        # that asyncio.run would wait for at shutdown (main() leaves by os._exit).
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.run_until_complete(_serve_with_stdio(server, sock, mcp))
    else:
        if ready is not None:
            ready(service.targets())
        if balancer is None:
            server.run(sockets=[sock])
        else:  # a worker: uvicorn listens on nothing; the balancer accepts and hands it the connections
            asyncio_run = __import__("uvicorn._compat", fromlist=["asyncio_run"]).asyncio_run
            asyncio_run(_serve_balanced(server, sock, balancer), loop_factory=config.get_loop_factory())
    logging.getLogger("pyserini_splare.serve").info("stopped")
    return 0


def _httptools_protocol():
    """uvicorn's httptools protocol, but a URL longer than httptools parses (64 KiB) is a JSON 413."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from .front import error_body

    class Protocol(HttpToolsProtocol):
        def send_400_response(self, msg: str) -> None:
            if len(getattr(self, "url", b"")) <= 65535:
                return super().send_400_response(msg)
            body = error_body("the URL is longer than 65535 bytes")
            self.transport.write(b"HTTP/1.1 413 Request Entity Too Large\r\ncontent-type: application/json\r\n"
                                 b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))
            self.transport.close()

    return Protocol


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


async def _serve_balanced(server, sock, balancer) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    serving = loop.create_task(server.serve(sockets=[]))
    while not server.started and not serving.done():
        await asyncio.sleep(0.01)
    if server.started:
        config = server.config

        class Counted(config.http_protocol_class):
            def connection_lost(self, exc):
                balancer.closed()
                super().connection_lost(exc)

        def protocol():  # what uvicorn's own listener would create (Server.startup), counted
            return Counted(config=config, server_state=server.server_state, app_state=server.lifespan.state, _loop=loop)

        balancer.serve(loop, sock, protocol, lambda: server.should_exit)
    try:
        await serving
    finally:
        balancer.stop(loop, sock.fileno())


async def _serve_with_stdio(server, sock, mcp) -> None:
    import asyncio
    import logging

    async def stdio():
        try:
            await mcp.run_stdio_async()
        except Exception as e:  # a broken pipe to the agent ends the stdio side only
            logging.getLogger("pyserini_splare.serve").warning("MCP stdio stopped: %s", e)
        finally:
            logging.getLogger("pyserini_splare.serve").info("MCP stdio closed: stopping")
            server.should_exit = True

    task = asyncio.get_running_loop().create_task(stdio())
    await server.serve(sockets=[sock])
    task.cancel()


def main(argv=None) -> int:
    try:
        return serve(argv)
    except UsageError as e:
        if os.environ.get("PYSERINI_SPLARE_DEBUG", "") not in ("", "0"):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    rc = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip the interpreter's teardown of a JVM and torch (7-12 s here): SIGTERM must end within 10 s.
    os._exit(rc)
