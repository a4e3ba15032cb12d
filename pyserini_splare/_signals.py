"""One signal policy for every command: SIGINT and SIGTERM end it within seconds, with one line.

:class:`Interrupted` in the main thread, exit status 130 or 143, outputs cleaned up by the writers, and a
watchdog for a main thread stuck in a long native call (docs/errors.md); :func:`pyserini_splare._errors.cli_main`
installs it.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import socket
import sys
import threading
import time
from pathlib import Path

# Seconds a signalled process gets to unwind (clean up, keep resumable state) before the watchdog
# ends it: the main thread may be inside a native call that only returns when its work is done.
SIGNAL_GRACE_S = 4.0


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM, raised in the main thread. A KeyboardInterrupt, so that every existing
    ``except KeyboardInterrupt`` and ``finally`` path treats SIGTERM exactly like Ctrl-C, and no
    ``except Exception`` swallows it."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _signal_message(signum: int) -> str:
    return "interrupted (SIGINT)" if signum == signal.SIGINT else f"terminated ({signal.Signals(signum).name})"


# Build folders and temporary files in progress: removed by the watchdog if it has to end the
# process itself (the main thread removes them on its own when it unwinds). path -> keep (resumable)
_in_progress: dict[Path, bool] = {}
_in_progress_lock = threading.Lock()


@contextlib.contextmanager
def registered(path: Path, keep: bool):
    """``path`` is an output in progress while the block runs (``keep``: resumable, left in place)."""
    with _in_progress_lock:
        _in_progress[path] = keep
    try:
        yield
    finally:
        with _in_progress_lock:
            _in_progress.pop(path, None)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


class _SignalPolicy:
    """SIGINT/SIGTERM → :class:`Interrupted` in the main thread, plus a watchdog thread (docs/errors.md).

    A main thread inside one long JNI or Rust call cannot run Python's handler, so the watchdog, woken through
    ``signal.set_wakeup_fd``, ends the process :data:`SIGNAL_GRACE_S` seconds after the signal (or at a second
    one) with ``os._exit(128 + signum)``, after removing the non-resumable outputs in progress.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.depth = 0
        self.old_handlers: dict = {}
        self.old_wakeup = -1
        self.sock_r = self.sock_w = None
        self.thread = None
        self.first: int | None = None
        self.done = threading.Event()

    def install(self) -> bool:
        if threading.current_thread() is not threading.main_thread():
            return False
        self.depth += 1
        if self.depth > 1:
            return True
        self.first = None
        self.done.clear()
        self.sock_r, self.sock_w = socket.socketpair()
        self.sock_w.setblocking(False)
        self.old_handlers = {s: signal.getsignal(s) for s in self.SIGNALS}
        for s in self.SIGNALS:
            signal.signal(s, self._handler)
        self.old_wakeup = signal.set_wakeup_fd(self.sock_w.fileno(), warn_on_full_buffer=False)
        self.thread = threading.Thread(target=self._watch, args=(self.sock_r,), name="signal-watchdog", daemon=True)
        self.thread.start()
        return True

    def uninstall(self) -> None:
        self.depth -= 1
        if self.depth > 0:
            return
        self.done.set()
        signal.set_wakeup_fd(self.old_wakeup)
        for s, h in self.old_handlers.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        self.sock_w.close()  # the watchdog reads EOF and ends
        self.thread.join(timeout=1)
        self.sock_r.close()

    def _handler(self, signum, frame):
        if self.first is None:
            self.first = signum
            raise Interrupted(signum)
        # A second signal while unwinding: the watchdog ends the process now; raising again here
        # would interrupt the cleanup itself.

    def _watch(self, sock) -> None:
        deadline = first = None
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                ready, _, _ = select.select([sock], [], [], timeout)
            except (OSError, ValueError):
                return
            if self.done.is_set():
                return
            if not ready:  # grace period over and the main thread still runs
                self._force_exit(first)
            try:
                data = sock.recv(64)
            except OSError:
                return
            if not data:
                return
            sigs = [b for b in data if b in self.SIGNALS]
            if not sigs:
                continue
            if first is None:
                first = sigs[0]
            if deadline is not None or len(sigs) > 1:
                self._force_exit(first)
            deadline = time.monotonic() + SIGNAL_GRACE_S

    def _force_exit(self, signum: int) -> None:
        if self.done.is_set():
            return
        with contextlib.suppress(Exception):
            sys.stderr.write(f"{_fresh_line()}error: {_signal_message(signum)}\n")
            sys.stderr.flush()
        with _in_progress_lock:
            items = list(_in_progress.items())
        for path, keep in items:
            if not keep:
                _remove(path)
        os._exit(128 + signum)


policy = _SignalPolicy()


def interruption(exc: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt behind ``exc``, if any: libraries re-raise it as another error (a lazy
    import interrupted by Ctrl-C surfaces as ``ModuleNotFoundError``), which is not the user's problem."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _fresh_line() -> str:
    """A newline on a terminal, where ^C or a progress bar may hold the cursor mid-line."""
    try:
        return "\n" if sys.stderr.isatty() else ""
    except (AttributeError, ValueError):
        return ""


def report_interrupt(exc: KeyboardInterrupt) -> int:
    """Print the one line for an interruption; its exit status (128 + signal number)."""
    signum = getattr(exc, "signum", signal.SIGINT)
    print(f"{_fresh_line()}error: {_signal_message(signum)}", file=sys.stderr)
    return 128 + signum
