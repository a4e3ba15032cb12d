"""The service's engine, shared by REST, MCP and the web page: indexes and encoders loaded once,
micro-batched workers, pipelines, an LRU cache, limits and metrics.

Every request becomes awaitable work on the worker threads of :mod:`.workers`; the asyncio loop
never blocks on a searcher or a model.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Mapping

from .._errors import UsageError
from . import core
from .config import ServeConfig
from .metrics import Metrics
from .pipelines import DEFAULT_DEPTH, DEFAULT_RERANK_DEPTH, FUSION_KWARGS, Call, Leaf, needs_reranker, resolve
from .workers import Batcher

log = logging.getLogger("pyserini_splare.serve")
_UNCANCEL = hasattr(asyncio.Task, "uncancel")  # 3.11+: a task can take back a cancellation (see _with_deadline)
_PAD = "\x00pad"  # a query and document id no real run uses


class RequestError(Exception):
    """A client error: ``status`` (4xx) and a one-line message for ``{"error": ...}``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Overloaded(RequestError):
    def __init__(self, depth: int):
        super().__init__(429, f"too many requests in flight ({depth}); retry later")


class _Lru:
    def __init__(self, size: int):
        self.size = size
        self._d: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            if key in self._d:
                self._d.move_to_end(key)
                return self._d[key]
        return None

    def put(self, key, value):
        if self.size <= 0:
            return
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self.size:
                self._d.popitem(last=False)


class _Lazy:
    """A mapping opened once, on first use, by ``load()`` (a corpus's texts, an index's document
    vectors: read from disk per lookup where the files allow it, see ``core.open_documents``).

    A store that cannot be opened (its files moved since the index was built) is not a start-up error:
    searches do not need it. Its error is kept, logged once by :meth:`preload`, and each request that
    needs the store gets it as a 404."""

    def __init__(self, load):
        self._load = load
        self._value = None
        self._error: str | None = None
        self._lock = threading.Lock()

    def get(self) -> Mapping:
        if self._value is None:
            with self._lock:
                if self._value is None and self._error is None:
                    try:
                        self._value = self._load()
                    except (UsageError, OSError) as e:
                        self._error = str(e).splitlines()[0] if str(e) else type(e).__name__
                if self._value is None:
                    raise RequestError(404, self._error)
        return self._value

    def preload(self) -> None:
        """Open the store in the background; a store that cannot be opened is one warning line."""
        try:
            self.get()
        except RequestError as e:
            log.warning("%s (searches are served; requests that need it get a 404)", e.message)

    def peek(self) -> Mapping | None:
        """The mapping if it is open, else None (never waits for ``load``)."""
        return self._value


class Service:
    def __init__(self, config: ServeConfig):
        self.config = config
        self.metrics = Metrics()
        self.indexes: dict[str, core.IndexHandle] = {}
        self.encoders: dict[str, Any] = {}
        self.labels: dict[str, dict[int, str]] = {}
        self.pipelines: dict = {}
        self.cache = _Lru(config.cache_size)
        self.inflight = 0
        self._deadlines: dict = {}  # request task -> loop time past which it is cancelled (a 504)
        self._expired: set = set()
        self._sweepers: dict = {}  # event loop -> the one timer that checks its deadlines (see _with_deadline)
        self._sweep_every = min(0.25, config.timeout_s / 8)
        self._jvm: Batcher | None = None
        self._batchers: dict[str, Batcher] = {}
        self._encoder_batchers: dict[str, Batcher] = {}
        self._searchers: dict[tuple, Any] = {}
        self._docs: dict[str, _Lazy] = {}
        self._doc_vectors: dict[str, _Lazy] = {}
        self._reranker = None
        self._reranker_lock = threading.Lock()
        self._rerank_docs: _Lazy | None = None  # the reranker section's own corpus, when it names one
        # ranx fuses with numba, whose default (workqueue) threading layer aborts the process when two
        # Python threads enter it at once: every fusion runs on this one thread.
        self._fusion = ThreadPoolExecutor(1, thread_name_prefix="serve-fusion")

    # -- start-up ------------------------------------------------------------------------------

    def load(self, opened: Mapping[str, core.IndexHandle] | None = None) -> None:
        """Open every index and encoder, parse every pipeline; UsageError on any problem (exit 2).

        ``opened``: indexes already open (``serve --workers``: opened before the fork, shared)."""
        opened = opened or {}
        cfg = self.config
        wait = cfg.batch_wait_ms / 1000.0  # encoders only: a forward pass costs little more for 8 texts than for 1
        # Searchers take what is queued and go (no window; docs/serve.md, "Concurrency")
        search_wait = 0.0
        self.pipelines = resolve(cfg.pipelines, set(cfg.indexes), core.fusion_methods())
        jvm_specs = [s for s in cfg.indexes.values() if core.backend_of(s.path).needs_jvm]
        for spec in cfg.indexes.values():
            backend = core.backend_of(spec.path)
            if backend.needs_jvm:
                if self._jvm is None:
                    core.start_jvm(cfg.java_heap)
                    self._jvm = Batcher("jvm", self._search_batch, max_batch=cfg.max_batch, max_wait=search_wait, jvm=True)
                batcher = self._jvm
                handle = batcher.call(lambda s=spec: core.open_index(s)).result()
                self._warm_up(handle, cfg.warmup_s / len(jvm_specs))  # one JIT for all: the time is shared
            else:
                handle = opened.get(spec.name) or core.open_index(spec)
                batcher = Batcher(f"index-{spec.name}", self._search_batch, max_batch=cfg.max_batch, max_wait=search_wait)
            self.indexes[spec.name] = handle
            self._batchers[spec.name] = batcher
            if spec.labels:
                self.labels[spec.name] = core.load_labels(spec.labels)
            if handle.query_kind != "text":
                if not handle.encoder_spec:
                    log.warning("index %s records no query encoder: it takes pre-encoded queries only", spec.name)
                else:
                    if handle.encoder_spec not in self.encoders:
                        self.encoders[handle.encoder_spec] = core.load_query_encoder(handle.encoder_spec, cfg.device)
                        self._encoder_batchers[handle.encoder_spec] = Batcher(
                            f"encoder-{len(self.encoders)}", self._encode_batch, max_batch=cfg.max_batch, max_wait=wait)
                    core.check_encoder(handle, self.encoders[handle.encoder_spec])
                    core.encode_queries(self.encoders[handle.encoder_spec], ["warm up"])  # torch's first call is slow
            if handle.corpus:
                self._docs[spec.name] = _Lazy(lambda c=handle.corpus: core.open_documents(c))
            if handle.query_kind == "sparse":
                self._doc_vectors[spec.name] = _Lazy(lambda h=handle: core.open_document_vectors(h))
        if any(needs_reranker(n, self.pipelines) for n in self.pipelines.values()) and not cfg.reranker:
            raise UsageError("a pipeline uses rerank(...): give the config a 'reranker: {model: ...}' section")
        self._fusion.submit(self._warm_fusion).result()
        for store in [*self._docs.values(), *self._doc_vectors.values()]:  # read in the background, not in a request
            threading.Thread(target=store.preload, daemon=True, name="serve-preload").start()

    @property
    def uses_jvm(self) -> bool:
        """Whether a Lucene or BM25 index is served (a JVM worker thread runs)."""
        return self._jvm is not None

    def _warm_up(self, handle: core.IndexHandle, seconds: float) -> None:
        """Compile the JVM's search before the first request (core.warm_up), on the JVM thread; logged."""
        if seconds <= 0:
            return
        import time

        t0 = time.perf_counter()
        try:
            n = self._jvm.call(lambda: core.warm_up(handle, seconds)).result()
        except UsageError as e:  # an optimisation only: the index is served cold
            log.warning("index %s served without warm-up: %s", handle.name, e)
            return
        if n:
            dt = time.perf_counter() - t0
            log.info("warmed up index %s: %s searches of its own terms in %.1f s (--warmup %g; 0 skips it)", handle.name,
                     f"{n:,}", dt, self.config.warmup_s)

    def _warm_fusion(self) -> None:
        """Compile ranx's numba kernels now (15-100 s the first time) rather than in a request's time."""
        methods = {n.op for p in self.pipelines.values() for n in _calls(p)} - {"rerank"}
        for m in sorted(methods):
            try:
                core.fuse([{"q": {"a": 2.0, "b": 1.0}}, {"q": {"b": 2.0, "c": 1.0}}], m,
                          **({"weights": [0.5, 0.5]} if m == "wsum" else {}))
            except UsageError:
                pass

    def close(self) -> None:
        self._fusion.shutdown(wait=False)
        for b in {id(b): b for b in [*self._batchers.values(), *self._encoder_batchers.values()]}.values():
            b.close()

    # -- worker-side functions (run on worker threads) -----------------------------------------

    def _searcher(self, name: str, options: tuple) -> Any:
        h = self.indexes[name]
        if not options:
            return h.searcher
        key = (name, options)
        s = self._searchers.get(key)
        if s is None:
            if len(self._searchers) > 64:  # a client cycling settings must not fill memory with searchers
                self._searchers.clear()
            s = self._searchers[key] = core.searcher_with_options(h, dict(options))
        return s

    def _search_batch(self, key, queries: list) -> list:
        name, k, options = key
        searcher = self._searcher(name, options)
        if self.config.workers > 1 and not self.indexes[name].needs_jvm:
            # A worker has one core's share: one by one skips rayon's hand-offs and Seismic's per-call pool, same
            # hits (docs/serve.md, "Several processes"). Not a Lucene index: its batch is one JNI call.
            return self._one_by_one(searcher, queries, k)
        if len(queries) == 1:  # its error (UsageError) names it 'query', as a failed batch's one-by-one pass does
            return [core.batch_search_with(searcher, {"query": queries[0]}, k, self.config.threads)["query"]]
        try:
            res = core.batch_search_with(searcher, {str(i): q for i, q in enumerate(queries)}, k, self.config.threads)
            return [res[str(i)] for i in range(len(queries))]
        except UsageError:
            pass
        return self._one_by_one(searcher, queries, k)  # one bad query must not fail the others of its batch

    @staticmethod
    def _one_by_one(searcher, queries: list, k: int) -> list:
        out = []  # each error names its query 'query', as a one-query request's does
        for q in queries:
            try:
                out.append(core.batch_search_with(searcher, {"query": q}, k, 1)["query"])
            except UsageError as e:
                out.append(e)
        return out

    def _encode_batch(self, spec: str, texts: list[str]) -> list:
        return core.encode_queries(self.encoders[spec], texts)

    # -- requests -------------------------------------------------------------------------------

    def targets(self) -> list[str]:
        return [*self.indexes, *self.pipelines]

    def _check_target(self, name: str) -> None:
        if name not in self.indexes and name not in self.pipelines:
            raise RequestError(404, f"unknown index or pipeline {name!r} (serving: {', '.join(self.targets())})")

    def check_hits(self, hits: Any) -> int:
        if isinstance(hits, bool):
            raise RequestError(400, "'hits' must be an integer")
        if isinstance(hits, str):
            try:
                hits = int(hits.strip())
            except ValueError:
                raise RequestError(400, "'hits' must be an integer") from None
        if isinstance(hits, float) and hits.is_integer():
            hits = int(hits)
        if not isinstance(hits, int):
            raise RequestError(400, "'hits' must be an integer")
        if hits <= 0:
            raise RequestError(400, "'hits' must be positive")
        if hits > self.config.max_hits:
            raise RequestError(400, f"'hits' must be at most {self.config.max_hits}")
        return hits

    def check_text(self, text: Any) -> str:
        if not isinstance(text, str) or not text.strip():
            raise RequestError(400, "'query' is required (a non-empty string)")
        if len(text) > self.config.max_query_chars:
            raise RequestError(413, f"'query' is longer than {self.config.max_query_chars} characters")
        return text

    async def _run(self, fut) -> Any:
        try:
            return await (fut if isinstance(fut, asyncio.Future) else asyncio.wrap_future(fut))
        except UsageError as e:
            raise RequestError(400, str(e)) from None

    async def search_index(self, name: str, *, text: str | None, vector: Mapping[str, float] | None, hits: int,
                           options: tuple = (), quantized: bool = False) -> tuple[list[tuple[str, float]], Any]:
        """Hits and the query actually searched (text, or the float/int vector) on one index."""
        h = self.indexes[name]
        if vector is not None:
            if h.query_kind != "sparse":
                raise RequestError(400, f"index {name} ({h.backend}) is not searched with sparse vectors: send 'query' text")
            try:
                query = core.check_query_vector(h, vector, quantized)
            except UsageError as e:
                raise RequestError(400, str(e)) from None
        elif h.query_kind == "text":
            query = text
        else:
            if not h.encoder_spec:
                raise RequestError(400, f"index {name} records no query encoder: send a pre-encoded 'vector'")
            query = await self._run(self._encoder_batchers[h.encoder_spec].submit_async(h.encoder_spec, text))
            if h.query_kind == "sparse" and not query:
                raise RequestError(400, "the query encodes to an empty vector (no known term)")
        found = await self._run(self._batchers[name].submit_async((name, hits, options), query))
        return found, query

    async def _node(self, node, text: str, hits: int) -> dict[str, float]:
        if isinstance(node, Leaf):
            if node.name in self.pipelines:
                return await self._node(self.pipelines[node.name], text, hits)
            found, _ = await self.search_index(node.name, text=text, vector=None, hits=hits)
            return dict(found)
        if node.op == "rerank":
            depth = node.kwargs.get("depth", DEFAULT_RERANK_DEPTH)
            first = await self._node(node.args[0], text, max(hits, depth))
            texts = await asyncio.to_thread(self._texts_for, node, [d for d, _ in core.ranked(first, depth)])
            reranker = await asyncio.to_thread(self._get_reranker)
            return await asyncio.to_thread(self._rerank, reranker, text, first, texts, depth)
        depth = node.kwargs.get("depth", DEFAULT_DEPTH)
        runs = await asyncio.gather(*(self._node(a, text, depth) for a in node.args))
        settings = {FUSION_KWARGS[k]: v for k, v in node.kwargs.items()}
        settings["depth"] = depth
        fused = await self._on_fusion_thread(core.fuse, _padded(runs), node.op, **{**settings, "k": hits})
        return fused.get("q", {})

    async def _on_fusion_thread(self, fn, *args, **kwargs):
        import functools

        return await asyncio.wrap_future(self._fusion.submit(functools.partial(fn, *args, **kwargs)))

    def _rerank(self, reranker, text, first, texts, depth):
        with self._reranker_lock:  # one model, one forward at a time
            return core.rerank_hits(reranker, text, first, texts, depth, int(self.config.reranker.get("batch_size", 8)))

    def _get_reranker(self):
        with self._reranker_lock:
            if self._reranker is None:
                opts = {k: v for k, v in self.config.reranker.items() if k not in ("model", "batch_size", "corpus")}
                self._reranker = core.load_reranker(self.config.reranker["model"], device=self.config.device, **opts)
            return self._reranker

    def _texts_for(self, node, docids: list[str]) -> dict[str, str]:
        corpus = self.config.reranker.get("corpus")
        store = None
        if corpus:
            if self._rerank_docs is None:
                self._rerank_docs = _Lazy(lambda: core.open_documents(corpus))
            store = self._rerank_docs
        else:
            names = [n for n in self._index_leaves(node) if n in self._docs]
            if not names:
                raise RequestError(400, "rerank needs document texts: no index of the pipeline records its corpus")
            store = self._docs[names[0]]
        docs = store.get()
        missing = [d for d in docids if d not in docs]
        if missing:
            raise RequestError(400, f"{len(missing)} documents are not in the corpus (first: {missing[0]!r})")
        return {d: docs[d] for d in docids}

    def _index_leaves(self, node) -> list[str]:
        from .pipelines import leaves

        out = []
        for n in leaves(node):
            out.extend(self._index_leaves(self.pipelines[n]) if n in self.pipelines else [n])
        return out

    def _target_indexes(self, target: str) -> list[str]:
        """The indexes ``target`` searches: itself, or a pipeline's leaves."""
        return self._index_leaves(self.pipelines[target]) if target in self.pipelines else [target]

    def document(self, target: str, docid: str) -> str | None:
        """A document's text from the corpus ``target`` records (a pipeline: its first index's)."""
        for n in self._target_indexes(target):
            if n in self._docs:
                return self._docs[n].get().get(docid)
        return None

    async def read_document(self, target: str, docid: str) -> str:
        """:meth:`document` for the doc route and MCP's get_document: a 404 for an unknown target or docid."""
        self._check_target(target)
        text = await asyncio.to_thread(self.document, target, docid)
        if text is None:
            raise RequestError(404, f"Document not found: {docid}")
        return text

    def _docs_in_memory(self, target: str) -> dict | None:
        """The ``{docid: text}`` dict :meth:`document` reads for ``target`` when it is loaded and held in
        memory (a tarball's or gzip's texts); None when it is read from disk per lookup or not loaded yet.
        Why: its lookups cost less on the loop than a thread hand-off (asyncio.to_thread) per request."""
        for n in self._target_indexes(target):
            if n in self._docs:
                held = self._docs[n].peek()
                return held if isinstance(held, dict) else None
        return None

    def has_docs(self, target: str) -> bool:
        return any(n in self._docs for n in self._target_indexes(target))

    async def search(self, target: str, *, text: str | None = None, vector: Mapping[str, float] | None = None,
                     hits: Any = 10, options: Mapping[str, Any] | None = None, explain: bool = False,
                     quantized: bool = False, with_docs: bool = True) -> dict[str, Any]:
        """The v1 answer ``{api, index, query: {text}, candidates: [{docid, score, rank, doc}]}``."""
        self._check_target(target)
        hits = self.check_hits(hits)
        if vector is None:
            text = self.check_text(text)
        elif target in self.pipelines:
            raise RequestError(400, "pipelines take 'query' text (each index encodes it with its own encoder)")
        if options and target in self.pipelines:
            raise RequestError(400, "backend options apply to an index, not a pipeline")
        if explain and target in self.pipelines:
            raise RequestError(400, "explain applies to an index, not a pipeline")
        if options is not None and not isinstance(options, Mapping):
            raise RequestError(400, "'options' must be an object")
        opts = tuple(sorted((options or {}).items()))
        try:
            json.dumps(opts) if opts else None
            hash(opts)
        except (TypeError, ValueError):
            raise RequestError(400, "'options' values must be numbers, strings or booleans") from None
        key = None
        if self.cache.size > 0:  # the key costs a JSON dump of the vector: only with a cache to look in
            key = (target, text, json.dumps(vector, sort_keys=True) if vector is not None else None, hits, opts, explain,
                   quantized, with_docs)
            cached = self.cache.get(key)
            if cached is not None:
                self.metrics.cache_hit()
                return cached
        if self.inflight >= self.config.max_queue:
            raise Overloaded(self.inflight)
        self.inflight += 1
        self.metrics.set_queue(self.inflight)
        try:
            work = self._search(target, text, vector, hits, opts, explain, quantized, with_docs)
            if _UNCANCEL:
                answer = await self._with_deadline(work)
            else:  # Python 3.10: wait_for wraps the search in a task of its own
                answer = await asyncio.wait_for(work, timeout=self.config.timeout_s)
        except asyncio.TimeoutError:
            raise RequestError(504, f"the search took longer than {self.config.timeout_s:g} s") from None
        except UsageError as e:  # a stage refused this query (e.g. every weight rounds to 0)
            raise RequestError(400, str(e)) from None
        finally:
            self.inflight -= 1
            self.metrics.set_queue(self.inflight)
        if key is not None:
            self.cache.put(key, answer)
        return answer

    async def _with_deadline(self, coro):
        """Await ``coro`` in this task; asyncio.TimeoutError past ``timeout_s``.

        One sweeper timer per service checks every request's deadline (:meth:`_sweep`): cheaper than
        ``asyncio.timeout``'s timer per request. A request is cancelled at most ``timeout_s / 8`` (at most
        0.25 s) after its deadline."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        self._deadlines[task] = loop.time() + self.config.timeout_s
        if loop not in self._sweepers:
            self._sweepers[loop] = loop.call_later(self._sweep_every, self._sweep, loop)
        try:
            return await coro
        except asyncio.CancelledError:
            if task in self._expired:
                task.uncancel()  # the cancellation was ours: the request goes on to answer its 504
                raise asyncio.TimeoutError from None
            raise
        finally:
            del self._deadlines[task]
            self._expired.discard(task)

    def _sweep(self, loop) -> None:
        now = loop.time()
        mine = [t for t in self._deadlines if t.get_loop() is loop]
        for task in mine:
            if self._deadlines[task] <= now and task not in self._expired:
                self._expired.add(task)
                task.cancel()
        # sleeps while nothing is in flight on this loop; the next request starts it again
        if mine:
            self._sweepers[loop] = loop.call_later(self._sweep_every, self._sweep, loop)
        else:
            del self._sweepers[loop]

    async def _search(self, target, text, vector, hits, opts, explain, quantized, with_docs) -> dict[str, Any]:
        query = None
        if target in self.pipelines:
            run = await self._node(self.pipelines[target], text, hits)
            found = core.ranked(run, hits)
        else:
            found, query = await self.search_index(target, text=text, vector=vector, hits=hits, options=opts,
                                                   quantized=quantized)
        docs = None
        if with_docs and self.has_docs(target):
            held = self._docs_in_memory(target)
            if held is not None:  # a dict lookup a hit, on the loop: a thread hand-off costs more
                docs = {d: held.get(d) for d, _ in found}
            else:  # read from the corpus's files (or still loading): off the loop
                try:
                    docs = await asyncio.to_thread(lambda: {d: self.document(target, d) for d, _ in found})
                except RequestError:  # the corpus cannot be read (logged at start-up): the hits without texts
                    docs = None
        cands = [{"docid": d, "score": s, "rank": i + 1, "doc": docs.get(d) if docs else None}
                 for i, (d, s) in enumerate(found)]
        if explain:
            why = await self.explain(target, query, [d for d, _ in found])
            for c in cands:
                c["explain"] = why.get(c["docid"], [])
        out = {"api": "v1", "index": target, "query": {"text": text} if text is not None else {"vector": vector},
               "candidates": cands}
        return out

    async def explain(self, name: str, query: Any, docids: list[str], top: int = 20) -> dict[str, list[dict]]:
        """Per document, the matched terms (SAE latents: with labels) and their contributions to the score."""
        h = self.indexes[name]
        if h.query_kind == "text":
            fut = self._jvm.call(lambda: {d: core.bm25_term_contributions(h, query, d, **self._bm25_params(h))[:top]
                                          for d in docids})
            return await self._run(fut)
        if h.query_kind != "sparse":
            raise RequestError(400, f"explain needs a sparse or BM25 index; {name} is {h.backend}")
        qint = core.quantize_for(h, query)
        store, labels = self._doc_vectors[name], self.labels.get(name)
        # off the loop: the vectors are read from their part files
        return await asyncio.to_thread(lambda: {d: core.explain_match(h, qint, store.get().get(d, {}), labels, top)
                                                for d in docids})

    @staticmethod
    def _bm25_params(h) -> dict[str, float]:
        return {k: float(h.options[k]) for k in ("k1", "b") if h.options.get(k) is not None}

    async def fuse(self, runs: list[dict[str, float]], method: str = "rrf", k: int = 10, **settings) -> list[tuple[str, float]]:
        if method not in core.fusion_methods():
            raise RequestError(400, f"unknown fusion method {method!r} (known: {', '.join(core.fusion_methods())})")
        for r in runs:
            if not isinstance(r, Mapping) or not all(isinstance(s, (int, float)) and math.isfinite(s) for s in r.values()):
                raise RequestError(400, "each run must be an object {docid: finite score}")
        try:
            fused = await self._on_fusion_thread(core.fuse, _padded(map(dict, runs)), method, k=k, **settings)
        except UsageError as e:
            raise RequestError(400, str(e)) from None
        return core.ranked(fused.get("q", {}), k)

    async def evaluate_query(self, qrels: str, qid: str, hits: Mapping[str, float], metric: str) -> float:
        """One query's ``metric`` (the eval stage's per-query value) for ``hits`` {docid: score}."""
        try:
            judged = await self._on_fusion_thread(core.get_qrels, qrels, self.config.data_dir)
            if qid not in judged:
                raise RequestError(400, f"query {qid!r} has no judgments in {qrels}")
            rows = await self._on_fusion_thread(core.evaluate, qrels, {qid: dict(hits)}, [metric], self.config.data_dir,
                                                per_query=True)
        except UsageError as e:
            raise RequestError(400, str(e)) from None
        return next(v for _, q, v in rows if q == qid)

    def describe(self) -> list[dict[str, Any]]:
        out = [h.describe() for h in self.indexes.values()]
        out += [{"name": n, "pipeline": self.config.pipelines[n]} for n in self.pipelines]
        return out


def _padded(runs) -> list[dict]:
    """One-query runs ``{"q": hits}`` for ``core.fuse``, each with a pad query present in every run: a CLI run
    file simply lacks a query an input found nothing for, but a one-query run would be empty, which ranx refuses."""
    pad = {_PAD: {_PAD: 1.0}}
    return [{"q": r, **pad} if r else pad for r in runs]


def _calls(node) -> list[Call]:
    if isinstance(node, Leaf):
        return []
    return [node] + [c for a in node.args for c in _calls(a)]
