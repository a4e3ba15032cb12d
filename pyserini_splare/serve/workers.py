"""Which thread runs what: micro-batching worker threads in front of searchers and encoders.

A :class:`Batcher` owns one thread. Callers ``submit(key, item)`` from any thread and get a
``concurrent.futures.Future``; the thread takes the first waiting item, waits at most ``max_wait``
seconds for more (up to ``max_batch``), groups what it has by ``key`` and calls ``fn(key, items)``
once per group. So concurrent requests for one encoder become one forward pass, and concurrent
requests for one index one ``batch_search`` -- and each searcher and model is only ever touched by
its own thread, whatever its thread safety:

* every JVM-backed index (Lucene impact, BM25) shares **one** thread: pyjnius binds an instance
  method through a method object shared by all threads (search/lucene.py), so two Python threads
  calling into two Lucene searchers at once is unsafe; inside a batch, the searcher's own
  ``threads`` option fans out as the search CLI does. The thread detaches from the JVM when it ends.
* every other index (Seismic, exact, faiss) and every query encoder gets a thread of its own.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable, Hashable


class Batcher:
    def __init__(self, name: str, fn: Callable[[Hashable, list[Any]], list[Any]], *, max_batch: int = 32,
                 max_wait: float = 0.003, jvm: bool = False):
        self.name = name
        self.fn = fn
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.jvm = jvm
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"serve-{name}", daemon=True)
        self._thread.start()

    def submit(self, key: Hashable, item: Any) -> Future:
        fut: Future = Future()
        self._q.put((key, item, fut))
        return fut

    def call(self, fn: Callable[[], Any]) -> Future:
        """Run ``fn()`` on this batcher's thread (e.g. a JVM call outside a batch)."""
        return self.submit(_CALL, fn)

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    first = self._q.get(timeout=0.1)
                except queue.Empty:
                    continue
                items = [first]
                deadline = time.monotonic() + self.max_wait
                while len(items) < self.max_batch:
                    left = deadline - time.monotonic()
                    try:
                        items.append(self._q.get(timeout=left) if left > 0 else self._q.get_nowait())
                    except queue.Empty:
                        break
                groups: dict[Hashable, list] = {}
                for it in items:
                    groups.setdefault(it[0], []).append(it)
                for key, group in groups.items():
                    self._run(key, group)
        finally:
            if self.jvm:
                try:
                    from jnius import detach

                    detach()
                except Exception:  # the JVM never attached this thread
                    pass

    def _run(self, key, group) -> None:
        live = [g for g in group if g[2].set_running_or_notify_cancel()]
        if not live:
            return
        if key is _CALL:
            for _, fn, fut in live:
                try:
                    fut.set_result(fn())
                except BaseException as e:
                    fut.set_exception(e)
            return
        try:
            results = self.fn(key, [g[1] for g in live])
        except BaseException as e:  # every request of the batch gets the error
            for g in live:
                g[2].set_exception(e)
            return
        for g, r in zip(live, results):
            if isinstance(r, BaseException):
                g[2].set_exception(r)
            else:
                g[2].set_result(r)

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)


class _Call:
    def __repr__(self):
        return "<call>"


_CALL = _Call()
