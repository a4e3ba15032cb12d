"""Bad input is one line: :class:`UsageError` and the wrapper every command's ``main`` goes through.

:func:`cli_main` holds the contract of docs/errors.md: a :class:`UsageError` (or an ``OSError`` about a path)
becomes ``error: <message>`` on stderr and exit status 2, never a traceback (``PYSERINI_SPLARE_DEBUG=1``
shows it); signals follow :mod:`._signals`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
from typing import Callable, Sequence

from ._signals import interruption, policy, report_interrupt

EXIT_USAGE = 2
EXIT_FAILURE = 1
DEBUG_ENV = "PYSERINI_SPLARE_DEBUG"


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit status 2."""


def first_line(e: BaseException) -> str:
    """An exception's message cut to its first line (a library's multi-line message would break the one-line
    contract); its ``reason`` where it has one (urllib's errors); its type's name where it says nothing."""
    text = str(getattr(e, "reason", None) or e).strip()
    return text.splitlines()[0] if text else type(e).__name__


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
        installed = policy.install()
        try:
            try:
                rc = main(argv)
            except UsageError as e:
                if debug:
                    raise
                print(f"error: {e}", file=sys.stderr)
                return EXIT_USAGE
            except KeyboardInterrupt as e:
                return report_interrupt(e)
            except BrokenPipeError:
                # Output piped into `head` and the reader closed early: not an error of ours.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return 0
            except OSError as e:
                intr = interruption(e)
                if intr is not None:
                    return report_interrupt(intr)
                if debug or e.errno not in _PATH_ERRNOS | _RESOURCE_ERRNOS:
                    raise
                print(f"error: {_os_error_line(e)}", file=sys.stderr)
                return EXIT_USAGE if e.errno in _PATH_ERRNOS else EXIT_FAILURE
            except Exception as e:
                intr = interruption(e)
                if intr is None or debug:
                    raise
                return report_interrupt(intr)
            return 0 if rc is None else rc
        finally:
            if installed:
                policy.uninstall()

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
