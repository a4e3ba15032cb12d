"""The REST app (FastAPI): Pyserini's v1 routes and shapes, plus POST search, metrics and the web page.

Wire-compatible with ``python -m pyserini.server.rest``: ``GET /v1/{index}/search?query=&hits=``
answers ``{api, index, query: {text}, candidates: [{docid, score, rank, doc}]}``, ``GET
/v1/{index}/doc/{docid}`` answers ``{api, index, docid, doc}``, errors are ``{"error": ...}``, API keys
come as ``X-API-Key`` or ``Authorization: Bearer``. Every error is a JSON 4xx (an unexpected failure a
JSON 500 without a traceback), and the service keeps serving.
"""

from __future__ import annotations

import logging

from fastapi import Request  # at module level: FastAPI resolves the handlers' annotations here

from .front import Front, parse_body, post_search_kwargs, read_body
from .service import RequestError, Service


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
        body = parse_body(await _read_body(request))
        return await service.search(index, **post_search_kwargs(body, cfg.max_query_chars))

    @app.get("/v1/{index}/doc/{docid}")
    async def doc(index: str, docid: str, parse: str | None = None):
        service._check_target(index)
        if not service.has_docs(index):
            raise RequestError(404, f"index {index} records no corpus to read documents from")
        return {"api": "v1", "index": index, "docid": docid, "doc": await service.read_document(index, docid)}

    if mcp_app is not None:
        app.mount("/mcp", mcp_app)
    return Front(app, service)


async def _read_body(request) -> bytes:
    from starlette.requests import ClientDisconnect

    raw = await read_body(request.scope, request.receive)
    if raw is None:  # as Starlette's request.stream() says it
        raise ClientDisconnect()
    return raw
