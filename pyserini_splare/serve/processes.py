"""``serve --workers N``: N server processes accepting on one listening socket.

Why: a search that holds Python's lock for its whole call (Seismic's) stops its process's event loop;
processes have a lock each. What the parent and the workers do, and why: docs/serve.md, "Several processes".
The parent forks before it has started a thread; each worker reports "ready" or its start-up error over a
pipe, and the parent closes its copy of the socket once they are up (the port is free when the last exits).
"""

from __future__ import annotations

import logging
import os
import select
import signal
import sys
import threading
import time
from typing import Callable

from .._errors import UsageError

log = logging.getLogger("pyserini_splare.serve")
_MSG_MAX = 3000  # bytes of one message on the pipe: below PIPE_BUF, so workers' writes never interleave


def serve_workers(n: int, sock, serve_one: Callable[[Callable], int]) -> int:
    """Fork ``n`` workers running ``serve_one(ready)`` on ``sock``; supervise them; the exit status."""
    if threading.active_count() > 1:  # fork copies only this thread: nothing may run beside it yet
        raise UsageError("internal: threads started before the worker processes were forked")
    stopping = {"signal": False}
    pids: list[int] = []

    def stop(*_):
        stopping["signal"] = True
        _signal_all(pids, signal.SIGTERM)

    for s in (signal.SIGTERM, signal.SIGINT):  # before forking: no signal may orphan a worker
        signal.signal(s, stop)
    r, w = os.pipe()
    counts = Connections(n)
    for i in range(n):
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the parent's code
            os.close(r)
            _worker(lambda ready: serve_one(ready, counts.of(i)), w, n)
        pids.append(pid)
    os.close(w)
    address = sock.getsockname()
    try:
        try:
            targets = _await_ready(n, r, pids, stopping)
        finally:
            os.close(r)
        sock.close()  # the workers hold it; the port is free once the last one exits
        if targets is not None:
            print(f"serving {serving_line(targets, address, n)}", file=sys.stderr, flush=True)
        return _supervise(pids, stopping)
    except BaseException:  # a start-up error, or a bug here: no worker outlives the parent
        _signal_all(pids, signal.SIGTERM)
        _reap(pids)
        raise


class Connections:
    """Each worker's count of open connections, in memory the workers share (mapped before the fork)."""

    def __init__(self, n: int):
        import mmap

        self.n = n
        self._map = mmap.mmap(-1, 8 * n)  # anonymous and MAP_SHARED: the forked workers see one array
        self.counts = memoryview(self._map).cast("q")

    def of(self, i: int) -> "Balancer":
        return Balancer(self, i)


class Balancer:
    """Worker ``i``'s accept loop on the shared socket: it takes a new connection only while no other
    worker holds fewer open ones.

    Why: left to the kernel, the first worker to wake accepts all that is queued, so a burst of keep-alive
    connections lands on one worker. Equal counts accept both (one gets EAGAIN); a worker with more waits
    2 ms and looks again."""

    def __init__(self, shared: Connections, i: int):
        self.counts, self.i = shared.counts, i
        self.stopped = False

    def serve(self, loop, sock, protocol_factory, should_exit) -> None:
        """Accept on ``sock`` from ``loop`` until ``should_exit()``; connections get ``protocol_factory()``."""
        import socket

        fd = sock.fileno()
        sock.setblocking(False)
        counts, i = self.counts, self.i

        def opened(task):  # a connection whose transport never opened is counted down here
            if task.cancelled() or task.exception() is not None:
                self.closed()

        def readable():
            if self.stopped or should_exit():
                self.stop(loop, fd)
                return
            mine = counts[i]
            if any(counts[j] < mine for j in range(len(counts))):  # another worker has room: its turn
                loop.remove_reader(fd)
                loop.call_later(0.002, lambda: self.stopped or loop.add_reader(fd, readable))
                return
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):  # another worker took it
                return
            except OSError as e:  # too many open files, ...: the connection waits in the queue
                log.warning("accept failed: %s", e)
                return
            counts[i] += 1
            conn.setblocking(False)
            if conn.family in (socket.AF_INET, socket.AF_INET6):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # see __main__._bind
            loop.create_task(loop.connect_accepted_socket(protocol_factory, conn)).add_done_callback(opened)

        loop.add_reader(fd, readable)

    def closed(self) -> None:
        """A connection of this worker closed (its protocol's ``connection_lost``)."""
        self.counts[self.i] -= 1

    def stop(self, loop, fd) -> None:
        self.stopped = True
        try:
            loop.remove_reader(fd)
        except (ValueError, OSError):
            pass


def serving_line(targets, address, workers: int = 1) -> str:
    """What follows "serving " on stderr once the service is up (tests and scripts wait for its URL)."""
    host, port = address[:2]
    return (f"{', '.join(targets)} on http://{host}:{port}/ (MCP at /mcp/"
            + (f"; {workers} worker processes)" if workers > 1 else ")"))


def _worker(serve_one, w: int, n: int) -> None:
    # Rayon (Seismic) starts a pool as wide as the machine in every process: N of them oversubscribe the
    # cores. A worker gets its share, unless RAYON_NUM_THREADS says otherwise.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    os.environ.setdefault("RAYON_NUM_THREADS", str(max(1, cores // n)))
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # while loading: the parent's SIGTERM ends it
    _end_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent too, which passes on SIGTERM
    rc = 1
    try:
        def ready(targets):  # called once loaded, after serve's own SIGTERM/SIGINT handlers are in place
            _send(w, "R" + "\t".join(targets))

        rc = serve_one(ready)
    except UsageError as e:
        _send(w, f"E{e}")
        rc = 2
    except BaseException as e:  # a bug: its traceback, and the parent stops
        import traceback

        traceback.print_exc()
        _send(w, f"Einternal error in a worker process ({type(e).__name__})")
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(rc)  # skip the teardown of a JVM or torch, as main() does


def _end_with_parent() -> None:
    """Linux: SIGTERM this worker when the parent dies, even by SIGKILL (no orphan keeps the port)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the parent's handlers are the only guard
        pass


def _send(w: int, message: str) -> None:
    data = message.replace("\n", " ").encode()[:_MSG_MAX] + b"\n"
    try:
        os.write(w, data)
    except OSError:  # the parent is gone
        pass


def _await_ready(n: int, r: int, pids: list[int], stopping: dict) -> list[str] | None:
    """Targets once every worker is ready; UsageError with the first worker's start-up error."""
    buf, ready, targets = b"", 0, None
    while ready < n:
        if stopping["signal"]:  # SIGTERM while loading (workers forked after the signal have not had it)
            _signal_all(pids, signal.SIGTERM)
            _reap(pids)
            return None
        try:
            readable = select.select([r], [], [], 0.2)[0]
        except InterruptedError:
            continue
        if readable:
            chunk = os.read(r, 65536)
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                text = line.decode(errors="replace")
                if text.startswith("E"):
                    raise UsageError(text[1:])
                ready += 1
                targets = text[1:].split("\t") if text[1:] else []
            if not chunk:
                raise UsageError("a worker process exited while loading")
        for pid in pids:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                pids.remove(pid)
                raise UsageError(f"a worker process exited while loading ({_describe(status)})")
    return targets


def _supervise(pids: list[int], stopping: dict) -> int:
    rc = 0
    alive = list(pids)
    while alive:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        if pid not in alive:
            continue
        alive.remove(pid)
        code = os.waitstatus_to_exitcode(status)
        if stopping["signal"] and code in (0, -signal.SIGTERM):
            continue
        if not stopping["signal"]:
            log.error("worker process %d exited (%s): stopping the others", pid, _describe(status))
            stopping["signal"] = True
            _signal_all(alive, signal.SIGTERM)
        rc = rc or (code if code > 0 else 1)
    return rc


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _reap(pids: list[int], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    for pid in list(pids):
        while True:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                break
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                break
            time.sleep(0.05)


def _describe(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"exit {code}"
