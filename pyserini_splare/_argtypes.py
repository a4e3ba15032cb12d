"""argparse types for numeric options, and a parser that keeps the CLI contract for argparse's own errors.

A range is declared where the option is (``type=positive_int``), not checked by hand after parsing;
:class:`ArgumentParser` makes every argparse error one ``error: ...`` line, exit status 2 (docs/errors.md).
:class:`ParserRules` widens argparse's negative-number pattern, which has no exponent (Python 3.11 takes
``--lr -1e-4`` for an option named ``-1e-4``), so the value reaches the option's type.
"""

from __future__ import annotations

import argparse
import math
import re
from typing import Callable

from ._errors import UsageError

# A number in any notation float() reads: -3, -0.5, -.5, -1e-4, -2.5E+3.
NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _parse(text: str, cast: type) -> int | float:
    try:
        value = cast(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected {'an integer' if cast is int else 'a number'}, got {text!r}") \
            from None
    if cast is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def int_range(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An integer type for ``low <= x <= high`` (None: unbounded on that side)."""
    def check(text: str) -> int:
        value = _parse(text, int)
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = (f">= {low}" if high is None else f"<= {high}" if low is None else f"in [{low}, {high}]")
            raise argparse.ArgumentTypeError(f"must be an integer {bounds}, got {text!r}")
        return value

    check.__name__ = "int"
    return check


def float_range(low: float | None = None, high: float | None = None, *, low_open: bool = False,
                high_open: bool = False) -> Callable[[str], float]:
    """A float type for ``low <(=) x <(=) high`` (``*_open``: the bound itself excluded)."""
    def check(text: str) -> float:
        value = _parse(text, float)
        bad_low = low is not None and (value <= low if low_open else value < low)
        bad_high = high is not None and (value >= high if high_open else value > high)
        if bad_low or bad_high:
            if low is not None and high is not None:
                bounds = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
            elif low is not None:
                bounds = f"{'>' if low_open else '>='} {low:g}"
            else:
                bounds = f"{'<' if high_open else '<='} {high:g}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {text!r}")
        return value

    check.__name__ = "float"
    return check


positive_int = int_range(1)
non_negative_int = int_range(0)
positive_float = float_range(0, low_open=True)
non_negative_float = float_range(0)
unit_interval = float_range(0, 1, low_open=True)  # a fraction that must keep something: (0, 1]


class ParserRules:
    """Mixin for an ``argparse.ArgumentParser`` subclass (also ``transformers.HfArgumentParser``): negative
    numbers in any notation are values, and argparse's errors are the contract's one line."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # argparse reads this private pattern to tell a negative number from an option (see module docstring).
        self._negative_number_matcher = NEGATIVE_NUMBER

    def error(self, message: str):
        # cli_main prints a UsageError as one `error:` line and returns 2; argparse would print its usage first.
        raise UsageError(message)


class ArgumentParser(ParserRules, argparse.ArgumentParser):
    """``argparse.ArgumentParser`` with :class:`ParserRules`, its epilog's examples kept as written; use it
    under ``cli_main``."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)
