"""Shared command-line plumbing: one-line errors, one signal policy, one output rule, atomic outputs.

Every ``python -m pyserini_splare.X`` entry point wraps its ``main`` with :func:`cli_main`, which
holds the contract documented in docs/errors.md:

* bad input (raised as :class:`UsageError`, or an ``OSError`` about a path: permission denied, a
  folder where a file is expected, ...) becomes ``error: <message>`` on stderr and exit status 2,
  never a traceback (``PYSERINI_SPLARE_DEBUG=1`` shows the traceback);
* SIGINT (Ctrl-C) and SIGTERM are handled the same way: a one-line message, exit status 130 or 143,
  outputs cleaned up by the writers (a resumable writer keeps its ``.partial`` state), and a
  watchdog that ends the process within a few seconds even when the main thread is stuck inside a
  long native (JVM, Rust) call that Python cannot interrupt;
* outputs are checked up front by :func:`check_output_file` / :func:`check_output_dir` (the one rule:
  an existing output is refused without ``--overwrite``) and written through :func:`atomic_file` /
  :func:`atomic_dir`, so an interrupted or failed command leaves nothing half-written at the final path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

EXIT_USAGE = 2
EXIT_FAILURE = 1
DEBUG_ENV = "PYSERINI_SPLARE_DEBUG"
VERBOSE_ENV = "PYSERINI_SPLARE_VERBOSE"
# Seconds a signalled process gets to unwind (clean up, keep resumable state) before the watchdog
# ends it: the main thread may be inside a native call that only returns when its work is done.
SIGNAL_GRACE_S = 4.0


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit status 2."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM, raised in the main thread. A KeyboardInterrupt, so that every existing
    ``except KeyboardInterrupt`` and ``finally`` path treats SIGTERM exactly like Ctrl-C, and no
    ``except Exception`` swallows it."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def message(self) -> str:
        return _signal_message(self.signum)


def _signal_message(signum: int) -> str:
    return "interrupted (SIGINT)" if signum == signal.SIGINT else f"terminated ({signal.Signals(signum).name})"


# --------------------------------------------------------------------------------------------
# Verbosity (JVM and library logs are hidden unless asked for)
# --------------------------------------------------------------------------------------------


def add_verbose_argument(parser) -> None:
    """``--verbose``: show the JVM's warnings and Anserini's INFO log (hidden by default)."""
    parser.add_argument("--verbose", action="store_true",
                        help=f"show the JVM's and Anserini's log output (hidden by default; also ${VERBOSE_ENV}=1)")


def set_verbose(flag: bool) -> None:
    """Set from a CLI's ``--verbose``; an environment variable so that child processes inherit it."""
    if flag:
        os.environ[VERBOSE_ENV] = "1"


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


# --------------------------------------------------------------------------------------------
# Signal policy
# --------------------------------------------------------------------------------------------

# Build folders and temporary files in progress: removed by the watchdog if it has to end the
# process itself (the main thread removes them on its own when it unwinds). path -> keep (resumable)
_in_progress: dict[Path, bool] = {}
_in_progress_lock = threading.Lock()


@contextlib.contextmanager
def _registered(path: Path, keep: bool):
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
    """SIGINT/SIGTERM → :class:`Interrupted` in the main thread, plus a watchdog thread.

    Python runs a signal handler only when the main thread executes bytecode; a thread inside one long
    JNI or Rust call (Anserini's indexer, a Seismic build) would ignore Ctrl-C until the call returns.
    The C-level handler also writes the signal number to a wakeup socket (``signal.set_wakeup_fd``),
    which the watchdog reads: if the main thread has not finished :data:`SIGNAL_GRACE_S` seconds after
    the signal (or a second signal comes), the watchdog prints the message, removes the non-resumable
    outputs in progress and ends the process with ``os._exit(128 + signum)``.
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


_policy = _SignalPolicy()


def _interruption(exc: BaseException) -> KeyboardInterrupt | None:
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


def _report_interrupt(exc: KeyboardInterrupt) -> int:
    signum = getattr(exc, "signum", signal.SIGINT)
    print(f"{_fresh_line()}error: {_signal_message(signum)}", file=sys.stderr)
    return 128 + signum


# OSErrors that describe the user's paths (exit 2), and those that describe the machine (exit 1).
_PATH_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.EISDIR, errno.ENOTDIR, errno.ENOENT, errno.EEXIST,
                errno.ENAMETOOLONG, errno.ELOOP, errno.ENOTEMPTY}
_RESOURCE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EMFILE, errno.ENFILE, errno.ENOMEM}


def _os_error_line(e: OSError) -> str:
    what = e.strerror or str(e)
    if e.filename is not None:
        return f"{e.filename}: {what}" + (f" (-> {e.filename2})" if e.filename2 is not None else "")
    return what


def cli_main(main: Callable[[Sequence[str] | None], int | None]) -> Callable[[Sequence[str] | None], int]:
    """Wrap a CLI ``main(argv)``: one-line errors (exit 2), the signal policy (130/143), quiet broken pipes."""

    def wrapped(argv: Sequence[str] | None = None) -> int:
        debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
        installed = _policy.install()
        try:
            try:
                rc = main(argv)
            except UsageError as e:
                if debug:
                    raise
                print(f"error: {e}", file=sys.stderr)
                return EXIT_USAGE
            except KeyboardInterrupt as e:
                return _report_interrupt(e)
            except BrokenPipeError:
                # Output piped into `head` and the reader closed early: not an error of ours.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return 0
            except OSError as e:
                intr = _interruption(e)
                if intr is not None:
                    return _report_interrupt(intr)
                if debug or e.errno not in _PATH_ERRNOS | _RESOURCE_ERRNOS:
                    raise
                print(f"error: {_os_error_line(e)}", file=sys.stderr)
                return EXIT_USAGE if e.errno in _PATH_ERRNOS else EXIT_FAILURE
            except Exception as e:
                intr = _interruption(e)
                if intr is None or debug:
                    raise
                return _report_interrupt(intr)
            return 0 if rc is None else rc
        finally:
            if installed:
                _policy.uninstall()

    wrapped.__doc__ = main.__doc__
    wrapped.__name__ = getattr(main, "__name__", "main")
    wrapped.__wrapped__ = main
    return wrapped


def run(main: Callable[[Sequence[str] | None], int]) -> None:
    """``if __name__ == '__main__': run(main)``: exit with the wrapped main's status.

    A signalled command exits at once, skipping the interpreter's finalization: tearing down torch,
    a JVM and their threads took 7-12 s here, and the user asked the command to stop now.
    """
    rc = main(None)
    if rc in (128 + signal.SIGINT, 128 + signal.SIGTERM):
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(rc)
    sys.exit(rc)


class ChildFailed(RuntimeError):
    """:func:`run_in_child`'s function raised (its message) or its process died (exit status)."""


def _child_main(send, fn, args, kwargs) -> None:
    # The parent handles signals and kills this process: die at once, and do not write to the
    # parent's signal wakeup socket (a forked child shares it).
    signal.set_wakeup_fd(-1)
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_DFL)
    try:
        res = ("ok", fn(*args, **kwargs))
    except UsageError as e:
        res = ("usage", str(e))
    except BaseException as e:  # noqa: BLE001 -- reported to the parent, which decides
        res = ("error", f"{type(e).__name__}: {e}")
    send.send(res)
    send.close()


def run_in_child(fn: Callable, *args, **kwargs):
    """``fn(*args, **kwargs)`` in a freshly started child process; its (picklable) return value.

    For native calls that hold the GIL for minutes, such as Seismic's Rust build: while one runs, no
    Python code runs in the process at all -- not the signal handler, not the watchdog -- so Ctrl-C
    would wait for the end of the build. In a child, the parent waits in short steps, handles the
    signal at once and kills the child. A :class:`UsageError` in the child is raised again as such;
    anything else as :class:`ChildFailed` with its message. ``fn`` and the arguments must pickle
    (a module-level function). The child is *spawned*, not forked: a fork copies none of the parent's
    threads, and a child that then waits on a thread pool the parent had started (rayon's, once the
    process has searched a Seismic index; a JVM's) hangs for good.
    """
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_main, args=(send, fn, args, kwargs), daemon=True)
    proc.start()
    send.close()
    try:
        while not recv.poll(0.2):  # poll is also true at end-of-file: the child died
            pass
        try:
            kind, payload = recv.recv()
        except EOFError:
            proc.join()
            raise ChildFailed(f"{getattr(fn, '__name__', 'child')} died (exit status {proc.exitcode})") from None
        proc.join()
    except BaseException:
        if proc.is_alive():
            proc.kill()
            proc.join()
        raise
    finally:
        recv.close()
    if kind == "ok":
        return payload
    if kind == "usage":
        raise UsageError(payload)
    raise ChildFailed(payload)


# --------------------------------------------------------------------------------------------
# The output rule
# --------------------------------------------------------------------------------------------


def _check_parent(path: Path, what: str) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise UsageError(f"{what} {path}: folder {parent} does not exist")
    if not parent.is_dir():
        raise UsageError(f"{what} {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {path}: cannot write in {parent} (permission denied)")


def check_output_file(path: str | os.PathLike, *, overwrite: bool = False, what: str = "output") -> Path:
    """The one rule for an output file, checked before any work: the path must not be a folder, its
    folder must exist and be writable, and an existing file is refused unless ``overwrite``."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{what} {path} is a folder; give a file path")
    if path.exists() and not overwrite:
        raise UsageError(f"{what} {path} already exists (remove it or pass --overwrite)")
    _check_parent(path, what)
    return path


def check_output_dir(path: str | os.PathLike, *, overwrite: bool = False, what: str = "output") -> Path:
    """The one rule for an output folder (an index, a vectors directory): an existing file at the path is
    refused even with ``overwrite`` (it is not ours to delete), an existing folder unless ``overwrite``,
    and the parent must exist and be writable (the folder is built beside it, in ``PATH.partial``)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{what} {path} exists and is not a folder; remove it or choose another path")
    if path.exists() and not overwrite:
        raise UsageError(f"{path} already exists (remove it or pass --overwrite)")
    tmp = partial_dir(path)
    if tmp.exists() and not tmp.is_dir():
        raise UsageError(f"{tmp} exists and is not a folder; remove it")
    _check_parent(path, what)
    return path


# --------------------------------------------------------------------------------------------
# Atomic outputs
# --------------------------------------------------------------------------------------------


def _umask() -> int:
    """The process umask, read without changing it where /proc allows (os.umask can only set it)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator:
    """Open a temporary file beside ``path``; rename it onto ``path`` only if the block succeeds.

    The file gets the permissions a plain ``open`` would give (0666 less the umask), not mkstemp's 0600,
    so other users of a shared machine can read it as they read everything else we write.
    """
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"output {path} is a folder; give a file path")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"output directory {parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    except PermissionError:
        raise UsageError(f"cannot write {path}: permission denied in {parent}") from None
    tmp = Path(tmp)
    with _registered(tmp, keep=False):
        try:
            os.fchmod(fd, 0o666 & ~_umask())
            os.close(fd)
            kwargs = {} if "b" in mode else {"encoding": encoding}
            with open(tmp, mode, **kwargs) as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def partial_dir(path: str | os.PathLike) -> Path:
    """Where an output directory is built before it is renamed into place (kept for resuming)."""
    path = Path(path)
    return path.with_name(path.name + ".partial")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, overwrite: bool = False, keep_partial: bool = False) -> Iterator[Path]:
    """Build a directory at ``PATH.partial`` and rename it to ``PATH`` when the block succeeds.

    ``keep_partial`` leaves an unfinished build in place (resumable writers use it); otherwise a
    failure or a signal removes it. The path is checked by :func:`check_output_dir` first (an
    existing folder is an error unless ``overwrite``; a file there always is).
    """
    path = Path(path)
    check_output_dir(path, overwrite=overwrite)
    tmp = partial_dir(path)
    if tmp.exists() and not keep_partial:
        shutil.rmtree(tmp)
    try:
        tmp.mkdir(exist_ok=True)
    except PermissionError:
        raise UsageError(f"cannot create {tmp}: permission denied") from None
    with _registered(tmp, keep=keep_partial):
        try:
            yield tmp
        except BaseException:
            if not keep_partial:
                shutil.rmtree(tmp, ignore_errors=True)
            raise
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)


def progress(iterable=None, **kwargs):
    """tqdm with this package's defaults (stderr, disabled when not a terminal unless forced)."""
    from tqdm.auto import tqdm

    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("mininterval", 0.5)
    if os.environ.get("PYSERINI_SPLARE_PROGRESS") == "0":
        kwargs["disable"] = True
    return tqdm(iterable, **kwargs)
