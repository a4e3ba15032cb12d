"""Shared command-line plumbing: one-line errors with exit code 2, and atomic outputs.

Every ``python -m pyserini_splare.X`` entry point wraps its ``main`` with :func:`cli_main`, so bad
input (raised as :class:`UsageError`) becomes ``error: <message>`` on stderr and exit status 2,
never a traceback. Outputs are written through :func:`atomic_file` / :func:`atomic_dir`, so an
interrupted or failed command leaves no half-written file behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Sequence

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit status 2."""


def cli_main(main: Callable[[Sequence[str] | None], int | None]) -> Callable[[Sequence[str] | None], int]:
    """Wrap a CLI ``main(argv)`` so that UsageError becomes ``error: ...`` and exit status 2."""

    def wrapped(argv: Sequence[str] | None = None) -> int:
        try:
            rc = main(argv)
        except UsageError as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_USAGE
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:
            # Output piped into `head` and the reader closed early: not an error of ours.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        return 0 if rc is None else rc

    wrapped.__doc__ = main.__doc__
    wrapped.__name__ = getattr(main, "__name__", "main")
    return wrapped


def run(main: Callable[[Sequence[str] | None], int]) -> None:
    """``if __name__ == '__main__': run(main)``: exit with the wrapped main's status."""
    sys.exit(main(None))


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator:
    """Open a temporary file beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"output directory {parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    os.close(fd)
    try:
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
    failure removes it. An existing ``PATH`` is an error unless ``overwrite`` is set.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise UsageError(f"{path} already exists (remove it or pass --overwrite)")
    if not path.parent.exists():
        raise UsageError(f"parent directory {path.parent} does not exist")
    tmp = partial_dir(path)
    if tmp.exists() and not keep_partial:
        shutil.rmtree(tmp)
    tmp.mkdir(exist_ok=True)
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
