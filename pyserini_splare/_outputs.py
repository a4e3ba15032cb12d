"""One output rule and atomic outputs: nothing half-written at a final path (docs/errors.md).

Outputs are checked up front (:func:`check_output_file` / :func:`check_output_dir`: an existing output needs
``--overwrite``) and written through :func:`atomic_file` / :func:`atomic_dir`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from ._errors import UsageError
from ._signals import registered


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
    with registered(tmp, keep=False):
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
    with registered(tmp, keep=keep_partial):
        try:
            yield tmp
        except BaseException:
            if not keep_partial:
                shutil.rmtree(tmp, ignore_errors=True)
            raise
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
