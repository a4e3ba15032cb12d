"""Connect to a Ray cluster for a ``--ray`` run (``local``, ``auto``, ``HOST:PORT``, ``ray://HOST:PORT``).

Addresses, checks and behaviour: docs/distributed.md, "``--ray ADDRESS``". A TCP connect with a short timeout
comes first because ``ray.init`` on an address where nothing listens retries for minutes; Ray's own logs stay
off the terminal unless ``--verbose``; Ctrl-C while the local cluster starts is held until ``ray.init``
returns, so a half-started cluster never leaves its agents running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import sys
from typing import Iterator

from .._console import verbose
from .._errors import UsageError

EXTRA = 'pip install "pyserini_splare[ray]" (or pip install -e ".[ray]" in a checkout)'
CONNECT_TIMEOUT_S = float(os.environ.get("PYSERINI_SPLARE_RAY_CONNECT_TIMEOUT", "5"))


def import_ray():
    """``import ray``, or a one-line UsageError naming the extra.

    Ray's C++ core installs a SIGSEGV handler when the driver starts; the JVM uses SIGSEGV itself, so a process
    already running the JVM would die later with exit 139 (Ray's ``ray_constants.py``: disable it "when using
    Java libraries"). The core reads the variable when the driver starts, so setting it here is in time.
    """
    os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
    # Read when ray is imported: no second cluster started by a call made while unwinding.
    os.environ.setdefault("RAY_ENABLE_AUTO_CONNECT", "0")
    try:
        import ray
    except ImportError:
        raise UsageError(f"--ray needs Ray, which is not installed: {EXTRA}") from None
    return ray


def _check_client_extra(address: str) -> None:
    """``ray://`` goes through Ray Client, which needs grpcio (Ray's ``client`` extra, part of ours)."""
    import importlib.util

    if address.startswith("ray://") and importlib.util.find_spec("grpc") is None:
        raise UsageError(f"--ray {address} connects through Ray Client, which needs grpcio (Ray's [client] extra): "
                         f"{EXTRA}, or pip install \"ray[client]\"")


def _local_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def ray_flags(address: str | None, workers: int | None, gpus_per_worker: float | None) -> tuple[int, float]:
    """The CLIs' ``--ray-workers`` and ``--ray-gpus-per-worker`` (defaults 1 and 0); given without ``--ray``
    they would be ignored, so that is an error."""
    if address is None:
        given = [f for f, v in (("--ray-workers", workers), ("--ray-gpus-per-worker", gpus_per_worker)) if v is not None]
        if given:
            raise UsageError(f"{' and '.join(given)} describe{'s' if len(given) == 1 else ''} a Ray run: add --ray local "
                             "(or a cluster's address), or leave {} out".format("them" if len(given) > 1 else "it"))
    return (1 if workers is None else workers), (0.0 if gpus_per_worker is None else gpus_per_worker)


def add_ray_flags(parser, ray: str, workers: str, gpus: str) -> None:
    """The CLIs' Ray flags, each with the command's help text (checked by :func:`check_ray_flags`)."""
    g = parser.add_argument_group("Ray (pip install -e \".[ray]\"; docs/distributed.md)")
    g.add_argument("--ray", metavar="ADDRESS", default=None, help=ray)
    g.add_argument("--ray-workers", type=int, default=None, help=workers)
    g.add_argument("--ray-gpus-per-worker", type=float, default=None, help=gpus)


def check_ray_flags(args) -> None:
    """Fill in the defaults of ``args``' Ray flags (:func:`ray_flags`) and, with ``--ray``, check them all
    (:func:`check_ray_args`)."""
    args.ray_workers, args.ray_gpus_per_worker = ray_flags(args.ray, args.ray_workers, args.ray_gpus_per_worker)
    if args.ray is not None:
        check_ray_args(args.ray, args.ray_workers, args.ray_gpus_per_worker)


def check_workers(workers: int, gpus_per_worker: float = 0.0, cpus_per_worker: float = 1.0) -> None:
    if workers < 1:
        raise UsageError(f"--ray-workers must be >= 1, got {workers}")
    if gpus_per_worker < 0:
        raise UsageError(f"--ray-gpus-per-worker must be >= 0, got {gpus_per_worker}")
    if cpus_per_worker <= 0:
        raise UsageError(f"--ray-cpus-per-worker must be > 0, got {cpus_per_worker}")


def check_ray_args(address: str, workers: int, gpus_per_worker: float = 0.0, cpus_per_worker: float = 1.0) -> None:
    """Everything a CLI can check about its --ray flags before reading any input: the extra is
    installed, the worker counts make sense (and fit this machine for a local cluster), the address
    has a valid form and answers."""
    check_workers(workers, gpus_per_worker, cpus_per_worker)
    _host_port(address)
    import_ray()
    _check_client_extra(address)
    if address == "local":
        cpus = _local_cpus()
        if workers * cpus_per_worker > cpus:
            # A local cluster sized past the machine runs the actors by turns (10x slower for 100 on 2
            # cores) while Ray warns that the run may hang: refused, as a remote cluster's shortfall is.
            raise UsageError(f"--ray-workers {workers} x {cpus_per_worker:g} CPU need {workers * cpus_per_worker:g} "
                             f"CPUs; this machine has {cpus} (a local Ray cluster runs on it): use --ray-workers "
                             f"{max(1, int(cpus // cpus_per_worker))} or fewer, or a cluster (--ray HOST:PORT)")
    check_reachable(address)


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a ``HOST:PORT`` or ``ray://HOST:PORT`` address; None for local/auto."""
    if address in ("local", "auto"):
        return None
    rest = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise UsageError(f"--ray {address!r}: expected local, auto, HOST:PORT or ray://HOST:PORT")
    return host.strip("[]"), int(port)


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    hp = _host_port(address)
    if hp is None:
        return
    try:
        socket.create_connection(hp, timeout=timeout).close()
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise UsageError(f"cannot reach the Ray cluster at {address}: {why} (is `ray start --head` running there?)") from None


@contextlib.contextmanager
def connect(address: str, *, num_cpus: int | None = None, num_gpus: int | None = None) -> Iterator:
    """Yield the ``ray`` module connected to ``address``; shut down only what this call started.

    ``local`` starts a cluster of ``num_cpus`` CPUs (default: this machine's) without the dashboard.
    A Ray already initialised in this process (a notebook, a test fixture) is used as it is.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    _check_client_extra(address)
    check_reachable(address)
    level = logging.INFO if verbose() else logging.ERROR
    logging.getLogger("ray").setLevel(level)
    # Workers' own output (model-loading chatter, a failed actor's traceback) stays in Ray's session logs:
    # the driver prints progress and, on failure, the one-line error.
    kwargs = dict(include_dashboard=False, logging_level=level, log_to_driver=verbose())
    with contextlib.ExitStack() as stack:
        if not verbose():
            stack.enter_context(_without_native_log_lines())
        stack.enter_context(_connected(ray, address, num_cpus, num_gpus, kwargs))
        yield ray


@contextlib.contextmanager
def _connected(ray, address: str, num_cpus, num_gpus, kwargs) -> Iterator:
    level = kwargs["logging_level"]
    with _signals_held() as held:
        try:
            if address == "local":
                ray.init(num_cpus=num_cpus, num_gpus=num_gpus, **kwargs)
            else:
                ray.init(address=address, **kwargs)
        except ConnectionError as e:
            ray.shutdown()
            raise UsageError(f"cannot connect to the Ray cluster at {address}: {str(e).splitlines()[0]}") from None
        except BaseException:
            ray.shutdown()
            raise
        logging.getLogger("ray").setLevel(level)  # ray.init configures its logger anew
        if held:
            ray.shutdown()
    try:
        yield
    finally:
        ray.shutdown()


# What Ray's C++ components (the driver's core worker) write on stderr: "[2026-12-04 20:42:41,286 E 30565 30565] ..."
_NATIVE_LOG_LINE = re.compile(rb"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [DIWEF] \d+ \d+\] ")


@contextlib.contextmanager
def _without_native_log_lines() -> Iterator[None]:
    """File descriptor 2 through a filter that drops the lines of Ray's C++ log (``core_worker.cc: ...``) and
    passes everything else at once (progress bars included). Why a filter: the driver's core worker writes
    them on stderr from C++, and the log-level variable that would silence it announces itself there."""
    import threading

    try:
        sys.stderr.flush()
        real = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    r, w = os.pipe()
    os.dup2(w, 2)
    os.close(w)

    def pump():
        buf = b""
        while True:
            try:
                data = os.read(r, 65536)
            except OSError:
                data = b""
            if not data:
                if buf and not _NATIVE_LOG_LINE.match(buf):
                    os.write(real, buf)
                return
            buf += data
            out = []
            while True:
                nl = buf.find(b"\n")
                if nl < 0:
                    break
                line, buf = buf[:nl + 1], buf[nl + 1:]
                if not _NATIVE_LOG_LINE.match(line):
                    out.append(line)
            # A partial line that cannot start a native log line (a progress bar's "\r..."): now.
            if buf and not buf.startswith(b"[") or (buf.startswith(b"[") and len(buf) > 40
                                                        and not _NATIVE_LOG_LINE.match(buf)):
                out.append(buf)
                buf = b""
            if out:
                with contextlib.suppress(OSError):
                    os.write(real, b"".join(out))

    thread = threading.Thread(target=pump, name="stderr-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(real, 2)  # the pipe's last writer in this process is gone: the pump reads EOF
        thread.join(timeout=2)
        os.close(real)
        with contextlib.suppress(OSError):
            os.close(r)


@contextlib.contextmanager
def _signals_held() -> Iterator[list]:
    """SIGINT/SIGTERM recorded, not raised, inside the block; after it, the first one is handed to the
    handler that was installed (the CLI's: it raises). The list says whether one came.

    The CLI's watchdog (``_signals``' signal policy) learns of a signal through the wakeup fd and ends the
    process a few seconds later if the main thread is still busy: that fd is detached for the block
    (a cluster start takes longer than the grace, and a process ended mid-start leaves Ray's agents
    behind) and told afterwards."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield []
        return
    held: list[int] = []
    sigs = (signal.SIGINT, signal.SIGTERM)
    old = {s: signal.getsignal(s) for s in sigs}
    wakeup = signal.set_wakeup_fd(-1)
    for s in sigs:
        signal.signal(s, lambda signum, frame: held.append(signum))
    try:
        yield held
    finally:
        for s, h in old.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        signal.set_wakeup_fd(wakeup, warn_on_full_buffer=False)
    if held:
        if wakeup >= 0:
            with contextlib.suppress(OSError):
                os.write(wakeup, bytes([held[0]]))
        handler = old[held[0]]
        if callable(handler):
            handler(held[0], None)
        raise KeyboardInterrupt


def require_resources(ray, workers: int, cpus_per_worker: float, gpus_per_worker: float) -> None:
    """Refuse a run the cluster can never schedule (Ray would wait forever for the resources)."""
    total = ray.cluster_resources()
    need_cpu, need_gpu = workers * cpus_per_worker, workers * gpus_per_worker
    if need_gpu > total.get("GPU", 0):
        raise UsageError(f"{workers} workers x {gpus_per_worker} GPUs need {need_gpu:g} GPUs; the Ray cluster has "
                         f"{total.get('GPU', 0):g}")
    if need_cpu > total.get("CPU", 0):
        raise UsageError(f"{workers} workers x {cpus_per_worker} CPUs need {need_cpu:g} CPUs; the Ray cluster has "
                         f"{total.get('CPU', 0):g}")


def usage_error_in(e: BaseException) -> UsageError | None:
    """The UsageError raised inside a Ray task or actor, as its one line, or None.

    Ray wraps a worker's exception (RayTaskError, ActorDiedError, Ray Data's own errors) in one whose
    message is the remote traceback; the CLI should print the original line instead.
    """
    first, seen = e, set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, UsageError):
            return UsageError(str(e).splitlines()[-1] if "Traceback" in str(e) else str(e))
        cause = getattr(e, "cause", None)
        if isinstance(cause, UsageError):
            return UsageError(str(cause).splitlines()[0])
        e = e.__cause__ or e.__context__ or cause
    for line in reversed(str(first).splitlines()):
        if "UsageError: " in line:
            return UsageError(line.split("UsageError: ", 1)[1])
    return None


def actor_result(ray, refs):
    """``ray.get(refs)``, with our own one-line errors raised inside a task or actor passed through."""
    try:
        return ray.get(refs)
    except (ray.exceptions.RayTaskError, ray.exceptions.ActorDiedError) as e:
        err = usage_error_in(e)
        if err is None:
            raise
        raise err from None
    except ray.exceptions.ActorDiedError as e:
        msg = str(e)
        for line in msg.splitlines():
            if "UsageError: " in line:
                raise UsageError(line.split("UsageError: ", 1)[1]) from None
        raise
