"""The REST app (FastAPI): Pyserini's v1 routes and shapes, plus POST search, metrics and the web page.

Wire-compatible with ``python -m pyserini.server.rest``: ``GET /v1/{index}/search?query=&hits=``
answers ``{api, index, query: {text}, candidates: [{docid, score, rank, doc}]}``, ``GET
/v1/{index}/doc/{docid}`` answers ``{api, index, docid, doc}``, errors are ``{"error": ...}``, API keys
come as ``X-API-Key`` or ``Authorization: Bearer``. Every error is a JSON 4xx (an unexpected failure a
JSON 500 without a traceback), and the service keeps serving.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import time
from typing import Any

from fastapi import Request  # at module level: FastAPI resolves the handlers' annotations here

from .service import RequestError, Service

access_log = logging.getLogger("pyserini_splare.serve.access")

MAX_BODY = 1 << 20  # bytes of a POST body: a 1 MB query is refused before it is parsed
OPEN_PATHS = ("/", "/healthz", "/favicon.ico")


def _error(status: int, message: str):
    from fastapi.responses import JSONResponse

    return JSONResponse(status_code=status, content={"error": message})


def create_app(service: Service, mcp_app=None, lifespan=None):
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.middleware.cors import CORSMiddleware
    from fastapi.responses import HTMLResponse, PlainTextResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from .web import PAGE

    cfg = service.config
    app = FastAPI(title="pyserini_splare serve", version="1",
                  description="Pyserini-compatible v1 search API over learned sparse, BM25 and dense indexes.",
                  lifespan=lifespan)
    if cfg.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(cfg.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["X-API-Key", "Authorization", "Content-Type"])

    @app.exception_handler(RequestError)
    async def _request_error(request, exc: RequestError):
        return _error(exc.status, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(request, exc):
        first = exc.errors()[0] if exc.errors() else {}
        return _error(400, f"bad parameter {'.'.join(map(str, first.get('loc', [])[1:]))}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request, exc):
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request, exc):  # never a traceback in a body
        logging.getLogger("pyserini_splare.serve").exception("unexpected error on %s", request.url.path)
        return _error(500, f"internal error ({type(exc).__name__})")

    @app.middleware("http")
    async def _guard(request: Request, call_next):
        t0 = time.perf_counter()
        path = request.url.path
        if cfg.api_keys and path not in OPEN_PATHS and request.method != "OPTIONS":
            key = request.headers.get("x-api-key")
            auth = request.headers.get("authorization", "")
            if key is None and auth.lower().startswith("bearer "):
                key = auth[7:].strip()
            if key is None:
                response = _error(401, "missing API key (send X-API-Key or Authorization: Bearer)")
            elif not any(hmac.compare_digest(key.encode(), k.encode()) for k in cfg.api_keys):
                response = _error(403, "wrong API key")
            else:
                response = None
        else:
            response = None
        if response is None:
            try:
                response = await call_next(request)
            except Exception as exc:  # raised past the handlers (e.g. inside a mounted app)
                logging.getLogger("pyserini_splare.serve").exception("unexpected error on %s", path)
                response = _error(500, f"internal error ({type(exc).__name__})")
        dt = time.perf_counter() - t0
        route = _route_label(path, service)
        service.metrics.observe(route, response.status_code, dt)
        if cfg.log_requests:
            access_log.info(json.dumps({"ts": round(time.time(), 3), "method": request.method, "path": path[:200],
                                        "route": route, "status": response.status_code, "ms": round(dt * 1000, 2),
                                        "client": request.client.host if request.client else None}))
        return response

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return PAGE

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok", "indexes": list(service.indexes), "pipelines": list(service.pipelines)}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics():
        return PlainTextResponse(service.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/indexes")
    async def indexes():
        return {"api": "v1", "indexes": service.describe()}

    @app.get("/v1/{index}/search")
    async def search_get(index: str, query: str | None = None, hits: str | None = None, parse: str | None = None,
                         k1: float | None = None, b: float | None = None):
        if (k1 is None) != (b is None):
            raise RequestError(400, "Parameters 'k1' and 'b' go together")
        options = {"k1": k1, "b": b} if k1 is not None else None
        return await service.search(index, text=query, hits=10 if hits in (None, "") else hits, options=options)

    @app.post("/v1/{index}/search")
    async def search_post(index: str, request: Request):
        body = await _json_body(request)
        unknown = set(body) - {"query", "vector", "hits", "options", "explain", "quantized", "docs"}
        if unknown:
            raise RequestError(400, f"unknown field {sorted(unknown)[0]!r} (fields: query, vector, hits, options, "
                                    f"explain, quantized, docs)")
        if ("query" in body) == ("vector" in body):
            raise RequestError(400, "send exactly one of 'query' (text) and 'vector' ({term: weight})")
        vector = body.get("vector")
        if vector is not None:
            if not isinstance(vector, dict) or not vector:
                raise RequestError(400, "'vector' must be a non-empty object {term: weight}")
            for t, w in vector.items():
                if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
                    raise RequestError(400, f"weight of {t!r} must be a finite non-negative number, got {w!r}")
            if sum(len(t) for t in vector) > cfg.max_query_chars:
                raise RequestError(413, f"'vector' terms are longer than {cfg.max_query_chars} characters in all")
        for flag in ("explain", "quantized", "docs"):
            if flag in body and not isinstance(body[flag], bool):
                raise RequestError(400, f"'{flag}' must be true or false")
        return await service.search(index, text=body.get("query"), vector=vector, hits=body.get("hits", 10),
                                    options=body.get("options"), explain=body.get("explain", False),
                                    quantized=body.get("quantized", False), with_docs=body.get("docs", True))

    @app.get("/v1/{index}/doc/{docid}")
    async def doc(index: str, docid: str, parse: str | None = None):
        service._check_target(index)
        if not service.has_docs(index):
            raise RequestError(404, f"index {index} records no corpus to read documents from")
        import asyncio

        text = await asyncio.to_thread(service.document, index, docid)
        if text is None:
            raise RequestError(404, f"Document not found: {docid}")
        return {"api": "v1", "index": index, "docid": docid, "doc": text}

    if mcp_app is not None:
        app.mount("/mcp", mcp_app)
    return app


async def _json_body(request) -> dict[str, Any]:
    size = request.headers.get("content-length")
    if size is not None and size.isdigit() and int(size) > MAX_BODY:
        raise RequestError(413, f"request body larger than {MAX_BODY} bytes")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise RequestError(413, f"request body larger than {MAX_BODY} bytes")
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as e:
        raise RequestError(400, f"malformed JSON body ({str(e).splitlines()[0][:120]})") from None
    if not isinstance(body, dict):
        raise RequestError(400, "the JSON body must be an object")
    return body


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number")


def _route_label(path: str, service: Service) -> str:
    """A bounded label set for metrics: the route template, never the raw path."""
    parts = path.strip("/").split("/")
    if path in ("/", "/healthz", "/metrics", "/openapi.json", "/docs", "/v1/indexes"):
        return path
    if parts and parts[0] == "mcp":
        return "/mcp"
    if len(parts) >= 3 and parts[0] == "v1" and parts[2] in ("search", "doc"):
        return f"/v1/{{index}}/{parts[2]}"
    return "other"
