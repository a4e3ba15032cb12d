"""The ASGI front of the REST app: API keys, metrics and the request log for every route, and the two
search routes (``GET`` and ``POST /v1/{index}/search``) answered here, without FastAPI's per-request
machinery.

Why: under load most of a search's time went to FastAPI's and Starlette's per-request machinery
(docs/serve.md, "Per-request cost"). This plain ASGI callable calls the same :meth:`Service.search` and
writes the same JSON; FastAPI keeps the OpenAPI contract, CORS (``--cors-origin`` sends every request
through it), ``GET`` with ``k1``/``b`` (whose float parsing FastAPI words) and every other route.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import time
from typing import Any
from urllib.parse import parse_qsl

from .service import RequestError, Service

try:  # 10x faster than json.dumps on a page of hits; optional (pip install orjson)
    import orjson
except ImportError:  # pragma: no cover - exercised where orjson is missing
    orjson = None

access_log = logging.getLogger("pyserini_splare.serve.access")
log = logging.getLogger("pyserini_splare.serve")

MAX_BODY = 1 << 20  # bytes of a POST body: a 1 MB query is refused before it is parsed
OPEN_PATHS = ("/", "/healthz", "/favicon.ico")
POST_FIELDS = ("query", "vector", "hits", "options", "explain", "quantized", "docs")
_POST_FIELDS = frozenset(POST_FIELDS)
_JSON_HEADERS = [(b"content-type", b"application/json")]


def dumps(obj: Any) -> bytes:
    """JSON bytes as Starlette's JSONResponse writes them (compact, UTF-8, no NaN), faster with orjson."""
    if orjson is not None:
        try:
            return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)
        except TypeError:  # a type orjson does not know: the standard library's (and its error)
            pass
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def parse_body(raw: bytes) -> dict[str, Any]:
    """A POST body: a JSON object (NaN and Infinity refused) or a RequestError 400. orjson when installed:
    faster, and strict (a number that overflows a double is malformed; nesting is bounded, not a 500)."""
    try:
        body = orjson.loads(raw) if orjson is not None else json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as e:  # orjson.JSONDecodeError is a ValueError
        raise RequestError(400, f"malformed JSON body ({str(e).splitlines()[0][:120]})") from None
    if not isinstance(body, dict):
        raise RequestError(400, "the JSON body must be an object")
    return body


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number")


def post_search_kwargs(body: dict[str, Any], max_query_chars: int) -> dict[str, Any]:
    """``POST /v1/{index}/search``'s body checked, as keyword arguments of :meth:`Service.search`."""
    unknown = [f for f in body if f not in _POST_FIELDS]
    if unknown:
        raise RequestError(400, f"unknown field {sorted(unknown)[0]!r} (fields: {', '.join(POST_FIELDS)})")
    if ("query" in body) == ("vector" in body):
        raise RequestError(400, "send exactly one of 'query' (text) and 'vector' ({term: weight})")
    vector = body.get("vector")
    if vector is not None:
        if not isinstance(vector, dict) or not vector:
            raise RequestError(400, "'vector' must be a non-empty object {term: weight}")
        for t, w in vector.items():
            if (w < 0) if type(w) is int else (isinstance(w, bool) or not isinstance(w, (int, float))
                                                 or not math.isfinite(w) or w < 0):
                raise RequestError(400, f"weight of {t!r} must be a finite non-negative number, got {w!r}")
        if sum(len(t) for t in vector) > max_query_chars:
            raise RequestError(413, f"'vector' terms are longer than {max_query_chars} characters in all")
    for flag in ("explain", "quantized", "docs"):
        if flag in body and not isinstance(body[flag], bool):
            raise RequestError(400, f"'{flag}' must be true or false")
    return {"text": body.get("query"), "vector": vector, "hits": body.get("hits", 10), "options": body.get("options"),
            "explain": body.get("explain", False), "quantized": body.get("quantized", False),
            "with_docs": body.get("docs", True)}


def route_label(path: str) -> str:
    """A bounded label set for metrics: the route template, never the raw path."""
    if path in ("/", "/healthz", "/metrics", "/openapi.json", "/docs", "/v1/indexes"):
        return path
    parts = path.strip("/").split("/")
    if parts and parts[0] == "mcp":
        return "/mcp"
    if len(parts) >= 3 and parts[0] == "v1" and parts[2] in ("search", "doc"):
        return f"/v1/{{index}}/{parts[2]}"
    return "other"


async def respond(send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def error_body(message: str) -> bytes:
    return dumps({"error": message})


class Front:
    """The ASGI app uvicorn runs: ``app`` (FastAPI) behind API keys, metrics and the log, search routes here."""

    def __init__(self, app, service: Service):
        self.app = app
        self.service = service
        self.cfg = service.config
        self.fast = not self.cfg.cors_origins  # CORS headers are FastAPI's middleware's job

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":  # lifespan
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        path, method = scope["path"], scope["method"]
        state = {"status": 500, "started": False}

        async def tracked(message):
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
            await send(message)

        try:
            denied = self._denied(scope, path, method)
            if denied is not None:
                await respond(tracked, *denied)
            else:
                # the search routes answer through ``send`` itself (no wrapper per request): _search
                # reports the status, and answers every error of its own, 500s included
                status = await self._search(scope, receive, send, path, method) if self.fast else None
                if status is None:
                    await self.app(scope, receive, tracked)
                else:
                    state["status"] = status
        except _Responding as r:  # the client went away while the answer was written
            state["status"] = r.status
        except Exception as exc:  # FastAPI's handler has answered and logged it when the response started
            if not state["started"]:
                log.exception("unexpected error on %s", path)
                await respond(tracked, 500, error_body(f"internal error ({type(exc).__name__})"))
        dt = time.perf_counter() - t0
        route = route_label(path)
        self.service.metrics.observe(route, state["status"], dt)
        if self.cfg.log_requests:
            client = scope.get("client")
            access_log.info(json.dumps({"ts": round(time.time(), 3), "method": method, "path": path[:200], "route": route,
                                        "status": state["status"], "ms": round(dt * 1000, 2),
                                        "client": client[0] if client else None}))

    def _denied(self, scope, path: str, method: str) -> tuple[int, bytes] | None:
        keys = self.cfg.api_keys
        if not keys or path in OPEN_PATHS or method == "OPTIONS":
            return None
        key = auth = None
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                key = value.decode("latin-1")
            elif name == b"authorization":
                auth = value.decode("latin-1")
        if key is None and auth and auth.lower().startswith("bearer "):
            key = auth[7:].strip()
        if key is None:
            return 401, error_body("missing API key (send X-API-Key or Authorization: Bearer)")
        if not any(hmac.compare_digest(key.encode(), k.encode()) for k in keys):
            return 403, error_body("wrong API key")
        return None

    async def _search(self, scope, receive, send, path: str, method: str) -> int | None:
        """Answer ``/v1/{index}/search`` and return the status; None: not this route, or a case left to FastAPI."""
        if method not in ("GET", "POST") or not path.startswith("/v1/") or not path.endswith("/search"):
            return None
        parts = path.split("/")
        if len(parts) != 4 or not parts[2]:
            return None
        index = parts[2]
        try:
            if method == "GET":
                params = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
                if "k1" in params or "b" in params:
                    return None  # FastAPI parses and words the float parameters
                hits = params.get("hits")
                answer = await self.service.search(index, text=params.get("query"), hits=10 if hits in (None, "") else hits)
            else:
                raw = await read_body(scope, receive)
                if raw is None:  # the client went away
                    return 500
                answer = await self.service.search(index, **post_search_kwargs(parse_body(raw), self.cfg.max_query_chars))
            status, body = 200, dumps(answer)
        except RequestError as e:
            status, body = e.status, error_body(e.message)
        except Exception as exc:  # as FastAPI's handler answers the other routes: logged, a JSON 500
            log.exception("unexpected error on %s", path)
            status, body = 500, error_body(f"internal error ({type(exc).__name__})")
        try:
            await respond(send, status, body)
        except Exception as exc:
            raise _Responding(status) from exc
        return status


class _Responding(Exception):
    """Writing an answer failed (the connection closed): nothing more can be sent on it."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


async def read_body(scope, receive) -> bytes | None:
    """An ASGI request's body, at most :data:`MAX_BODY` bytes (a 413 beyond); None if the client went away."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY:
            raise RequestError(413, f"request body larger than {MAX_BODY} bytes")
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise RequestError(413, f"request body larger than {MAX_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
