"""Connect to a Ray cluster for a ``--ray`` run, or start a small local one.

``--ray`` takes ``local`` (start a cluster inside this process, sized to the workers asked for),
``auto`` (the cluster this machine belongs to, found through ``RAY_ADDRESS`` or ``ray start``'s
files), ``HOST:PORT`` (a head node's GCS port, 6379 by default) or ``ray://HOST:PORT`` (Ray Client).

Why a reachability check of our own: ``ray.init(address="HOST:PORT")`` on an address where nothing
listens retries for minutes (measured: >2 min here) before failing, so a typo would look like a hang.
A TCP connect with a short timeout turns it into one line at once.
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Iterator

from .._errors import UsageError

EXTRA = 'pip install "pyserini_splare[ray]" (or pip install -e ".[ray]" in a checkout)'
CONNECT_TIMEOUT_S = float(os.environ.get("PYSERINI_SPLARE_RAY_CONNECT_TIMEOUT", "5"))


def import_ray():
    """``import ray``, or a one-line UsageError naming the extra.

    Ray's C++ core installs a failure-signal handler for SIGSEGV when the driver starts; the JVM uses
    SIGSEGV itself (implicit null checks, safepoints), so a driver started in a process that already runs
    the JVM (a Lucene search, then ``--ray`` in one Python session) dies later with exit 139 inside Java.
    Measured here (the test suite, JVM then ``ray.init`` then a Lucene search); Ray's own
    ``ray_constants.py`` says to disable the handler "when using Java libraries". The core reads the
    variable when the driver starts, so setting it here is in time.
    """
    os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
    try:
        import ray
    except ImportError:
        raise UsageError(f"--ray needs Ray, which is not installed: {EXTRA}") from None
    return ray


def check_workers(workers: int, gpus_per_worker: float = 0.0, cpus_per_worker: float = 1.0) -> None:
    if workers < 1:
        raise UsageError(f"--ray-workers must be >= 1, got {workers}")
    if gpus_per_worker < 0:
        raise UsageError(f"--ray-gpus-per-worker must be >= 0, got {gpus_per_worker}")
    if cpus_per_worker <= 0:
        raise UsageError(f"--ray-cpus-per-worker must be > 0, got {cpus_per_worker}")


def check_ray_args(address: str, workers: int, gpus_per_worker: float = 0.0, cpus_per_worker: float = 1.0) -> None:
    """Everything a CLI can check about its --ray flags before reading any input: the extra is
    installed, the worker counts make sense, the address has a valid form."""
    check_workers(workers, gpus_per_worker, cpus_per_worker)
    import_ray()
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
    check_reachable(address)
    # Workers' own output (model-loading chatter, a failed actor's traceback) stays in Ray's session logs:
    # the driver prints progress and, on failure, the one-line error.
    kwargs = dict(include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    try:
        if address == "local":
            ray.init(num_cpus=num_cpus, num_gpus=num_gpus, **kwargs)
        else:
            ray.init(address=address, **kwargs)
    except ConnectionError as e:
        raise UsageError(f"cannot connect to the Ray cluster at {address}: {str(e).splitlines()[0]}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


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


def actor_result(ray, refs):
    """``ray.get(refs)``, with our own one-line errors raised inside a task or actor passed through.

    Ray wraps an exception raised in a worker (say a UsageError for a bad model path in an actor's
    constructor) in a RayTaskError/ActorDiedError whose message is the remote traceback; the CLI
    should print the original line instead.
    """
    try:
        return ray.get(refs)
    except ray.exceptions.RayTaskError as e:
        cause = e.as_instanceof_cause()
        if isinstance(cause, UsageError):
            raise UsageError(str(cause).splitlines()[0]) from None
        raise
    except ray.exceptions.ActorDiedError as e:
        msg = str(e)
        for line in msg.splitlines():
            if "UsageError: " in line:
                raise UsageError(line.split("UsageError: ", 1)[1]) from None
        raise
