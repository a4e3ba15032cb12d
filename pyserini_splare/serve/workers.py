"""Which thread runs what: micro-batching worker threads in front of searchers and encoders.

A :class:`Batcher` owns one thread. Callers ``submit(key, item)`` from any thread and get a
``concurrent.futures.Future`` (``submit_async`` on the event loop: an asyncio future, a whole batch's
handed back to the loop in one callback); the thread takes the first waiting item, waits at most ``max_wait``
seconds for more (up to ``max_batch``), groups what it has by ``key`` and calls ``fn(key, items)``
once per group. So concurrent requests for one encoder become one forward pass, and concurrent
requests for one index one ``batch_search`` -- and each searcher and model is only ever touched by
its own thread, whatever its thread safety. Every JVM-backed index shares one thread (why:
docs/serve.md, "Concurrency"), which detaches from the JVM when it ends; every other index and every
query encoder gets a thread of its own.
"""

from __future__ import annotations

import asyncio
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

    def submit_async(self, key: Hashable, item: Any) -> "asyncio.Future":
        """As :meth:`submit`, from the running event loop: an asyncio future, resolved with the rest of
        its batch in one loop callback (cheaper than a ``concurrent.futures`` hand-off per request). A
        cancelled future (the request timed out) is skipped."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._q.put((key, item, _LoopFuture(loop, fut)))
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
        try:
            self._compute(key, live)
        finally:
            _LoopFuture.flush(live)

    def _compute(self, key, live) -> None:
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


class _LoopFuture:
    """An asyncio future seen from a worker thread with ``concurrent.futures.Future``'s methods the
    batcher calls: results are held until :meth:`flush` hands a whole batch to the loop at once."""

    def __init__(self, loop, fut):
        self.loop, self.fut, self.outcome = loop, fut, None

    def set_running_or_notify_cancel(self) -> bool:
        return not self.fut.cancelled()  # a racy read: _deliver checks again on the loop

    def set_result(self, value) -> None:
        self.outcome = (True, value)

    def set_exception(self, exc) -> None:
        self.outcome = (False, exc)

    @staticmethod
    def flush(group) -> None:
        by_loop: dict = {}
        for g in group:
            f = g[2]
            if isinstance(f, _LoopFuture) and f.outcome is not None:
                by_loop.setdefault(f.loop, []).append(f)
        for loop, fs in by_loop.items():
            try:
                loop.call_soon_threadsafe(_deliver, fs)
            except RuntimeError:  # the loop is closed: nobody waits for these any more
                pass


def _deliver(fs: list[_LoopFuture]) -> None:
    for f in fs:
        if not f.fut.done():
            ok, value = f.outcome
            if ok:
                f.fut.set_result(value)
            else:
                f.fut.set_exception(value)


class _Call:
    def __repr__(self):
        return "<call>"


_CALL = _Call()
