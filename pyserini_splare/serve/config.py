"""The service's settings: command-line flags and an optional YAML file, checked before anything loads.

YAML layout (every key optional; flags win over the file)::

    indexes:
      cacm: indexes/cacm.bm25                      # NAME: DIR, or NAME: {path, encoder, corpus, options, labels}
      splade: {path: indexes/cacm.splade.lucene, options: {}}
    pipelines:                                     # NAME: expression over index and pipeline names
      hybrid: rrf(cacm, splade, k=60)
      hybrid_rr: rerank(hybrid, depth=100)
    reranker: {model: /models/Qwen3-Reranker-0.6B, max_length: 2048, batch_size: 8}
    server: {host: 127.0.0.1, port: 8081, api_keys: [...], cors_origins: [...], timeout_s: 30,
             max_queue: 256, max_hits: 1000, max_query_chars: 10000, cache_size: 1024, batch_wait_ms: 3,
             workers: 1, warmup_s: 10}
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .._errors import UsageError


@dataclass
class IndexSpec:
    name: str
    path: str
    encoder: str | None = None  # overrides the encoder the index records
    corpus: str | None = None  # overrides the corpus the index records
    options: dict[str, Any] = field(default_factory=dict)  # the backend's search options (search --searcher-options)
    labels: str | None = None  # SAE latent labels for explain (explain --labels)


@dataclass
class ServeConfig:
    indexes: dict[str, IndexSpec] = field(default_factory=dict)
    pipelines: dict[str, str] = field(default_factory=dict)
    reranker: dict[str, Any] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 8081
    api_keys: list[str] = field(default_factory=list)
    cors_origins: list[str] = field(default_factory=list)  # empty: CORS off
    timeout_s: float = 30.0
    max_queue: int = 256  # requests in flight beyond which the service answers 429
    max_hits: int = 1000
    max_query_chars: int = 10_000
    cache_size: int = 1024  # LRU entries of (target, query, hits, options) -> answer; 0 disables
    batch_wait_ms: float = 3.0  # how long a query encoder waits to grow a micro-batch (searches do not wait)
    max_batch: int = 32
    warmup_s: float = 10.0  # at most this long, searches compile the JVM's search before a Lucene index is served
    threads: int = 1  # searcher threads per batch (search --threads)
    workers: int = 1  # server processes on one port (serve/processes.py)
    data_dir: str | None = None  # topics and qrels (eval tool)
    java_heap: str | None = None
    device: str = "cpu"
    log_requests: bool = True


SERVER_KEYS = {f.name for f in dataclasses.fields(ServeConfig)} - {"indexes", "pipelines", "reranker"}
INDEX_KEYS = {f.name for f in dataclasses.fields(IndexSpec)} - {"name"}
_NAME_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


def check_name(name: str, what: str) -> str:
    if not name or not set(name) <= _NAME_OK or name.startswith("."):
        raise UsageError(f"{what} name {name!r} must be letters, digits, '_', '-' or '.'")
    return name


def parse_index_flag(value: str) -> IndexSpec:
    """``NAME=DIR`` (the ``--index`` flag)."""
    name, sep, path = value.partition("=")
    if not sep or not path:
        raise UsageError(f"--index takes NAME=DIR, got {value!r}")
    return IndexSpec(check_name(name, "index"), path)


def _index_from_yaml(name: str, obj: Any) -> IndexSpec:
    if isinstance(obj, str):
        return IndexSpec(check_name(name, "index"), obj)
    if not isinstance(obj, Mapping) or "path" not in obj:
        raise UsageError(f"config: index {name!r} must be a path or a mapping with 'path'")
    unknown = set(obj) - INDEX_KEYS
    if unknown:
        raise UsageError(f"config: index {name!r}: unknown key {sorted(unknown)[0]!r} (known: {', '.join(sorted(INDEX_KEYS))})")
    if not isinstance(obj.get("options", {}), Mapping):
        raise UsageError(f"config: index {name!r}: 'options' must be a mapping")
    return IndexSpec(check_name(name, "index"), str(obj["path"]), obj.get("encoder"), obj.get("corpus"),
                     dict(obj.get("options") or {}), obj.get("labels"))


def load_yaml(path: str, config: ServeConfig) -> None:
    """Read ``path`` into ``config`` (one ``error:`` line for a bad file)."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"config {path} does not exist")
    try:
        obj = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise UsageError(f"config {path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(obj, Mapping):
        raise UsageError(f"config {path}: the top level must be a mapping")
    unknown = set(obj) - {"indexes", "pipelines", "reranker", "server"}
    if unknown:
        raise UsageError(f"config {path}: unknown section {sorted(unknown)[0]!r} (known: indexes, pipelines, reranker, server)")
    for name, spec in (obj.get("indexes") or {}).items():
        config.indexes[str(name)] = _index_from_yaml(str(name), spec)
    pipes = obj.get("pipelines") or {}
    if not isinstance(pipes, Mapping):
        raise UsageError(f"config {path}: 'pipelines' must map names to expressions")
    for name, expr in pipes.items():
        if not isinstance(expr, str):
            raise UsageError(f"config {path}: pipeline {name!r} must be an expression string such as 'rrf(a, b, k=60)'")
        config.pipelines[check_name(str(name), "pipeline")] = expr
    rr = obj.get("reranker") or {}
    if not isinstance(rr, Mapping) or (rr and "model" not in rr):
        raise UsageError(f"config {path}: 'reranker' must be a mapping with 'model'")
    config.reranker = dict(rr)
    server = obj.get("server") or {}
    if not isinstance(server, Mapping):
        raise UsageError(f"config {path}: 'server' must be a mapping")
    for k, v in server.items():
        if k not in SERVER_KEYS:
            raise UsageError(f"config {path}: unknown server setting {k!r} (known: {', '.join(sorted(SERVER_KEYS))})")
        setattr(config, k, v)


def check(config: ServeConfig) -> None:
    """Limits that must make sense before the service starts."""
    if not config.indexes:
        raise UsageError("no index to serve: pass --index NAME=DIR or a --config with 'indexes'")
    clash = set(config.indexes) & set(config.pipelines)
    if clash:
        raise UsageError(f"{sorted(clash)[0]!r} names both an index and a pipeline")
    for name, lo in (("port", 0), ("max_queue", 1), ("max_hits", 1), ("max_query_chars", 1), ("cache_size", 0),
                     ("max_batch", 1), ("threads", 1), ("workers", 1)):
        v = getattr(config, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise UsageError(f"{name} must be an integer >= {lo}, got {v!r}")
    for name in ("timeout_s", "batch_wait_ms", "warmup_s"):
        v = getattr(config, name)
        if (isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0 or v == float("inf")
                or (name == "timeout_s" and v == 0)):
            raise UsageError(f"{name} must be a positive number, got {v!r}")
    if config.port > 65535:
        raise UsageError(f"port must be <= 65535, got {config.port}")
    for spec in config.indexes.values():
        if not Path(spec.path).is_dir():
            raise UsageError(f"index {spec.name}: {spec.path} does not exist or is not a directory")
