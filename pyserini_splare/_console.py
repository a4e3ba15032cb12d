"""What a command shows on stderr while it works: progress bars, and library logs under ``--verbose``."""

from __future__ import annotations

import os
import sys

VERBOSE_ENV = "PYSERINI_SPLARE_VERBOSE"


def progress(iterable=None, **kwargs):
    """tqdm with this package's defaults (stderr, disabled when not a terminal unless forced)."""
    from tqdm.auto import tqdm

    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("mininterval", 0.5)
    if os.environ.get("PYSERINI_SPLARE_PROGRESS") == "0":
        kwargs["disable"] = True
    return tqdm(iterable, **kwargs)


def add_verbose_argument(parser, what: str = "the JVM's and Anserini's log output") -> None:
    """``--verbose``: show ``what`` (the JVM's warnings and Anserini's INFO log; Ray's log lines), hidden by
    default."""
    parser.add_argument("--verbose", action="store_true",
                        help=f"show {what} (hidden by default; also ${VERBOSE_ENV}=1)")


def set_verbose(flag: bool) -> None:
    """Set from a CLI's ``--verbose``; an environment variable so that child processes inherit it."""
    if flag:
        os.environ[VERBOSE_ENV] = "1"


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")
