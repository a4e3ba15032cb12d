"""argparse types and the contract parser (pyserini_splare/_argtypes.py): ranges, negative numbers, one line."""

from __future__ import annotations

import argparse

import pytest

from pyserini_splare._argtypes import (ArgumentParser, float_range, int_range, non_negative_float, non_negative_int,
                                       positive_float, positive_int, unit_interval)
from pyserini_splare._errors import UsageError, cli_main


@pytest.mark.parametrize("kind, good, bad", [
    (positive_int, {"1": 1, "40": 40, "+7": 7}, ["0", "-1", "1.5", "x", ""]),
    (non_negative_int, {"0": 0, "400": 400}, ["-1", "-40", "2e3"]),
    (positive_float, {"1e-4": 1e-4, "60": 60.0, ".5": 0.5}, ["0", "-1e-4", "nan", "inf", "-inf", "x"]),
    (non_negative_float, {"0": 0.0, "0.0": 0.0, "3.5": 3.5}, ["-0.1", "-1e-9", "nan"]),
    (unit_interval, {"1": 1.0, "0.5": 0.5, "1e-6": 1e-6}, ["0", "1.5", "-0.5", "1.0000001"]),
    (int_range(2, 10), {"2": 2, "10": 10}, ["1", "11"]),
    (float_range(-1, 1, high_open=True), {"-1": -1.0, "0.999": 0.999}, ["1", "-1.5"]),
])
def test_ranges(kind, good, bad):
    for text, value in good.items():
        got = kind(text)
        assert got == value and type(got) is type(value)
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError):
            kind(text)


def _parser():
    p = ArgumentParser(prog="prog")
    p.add_argument("--lr", type=positive_float)
    p.add_argument("--shift", type=float_range(-10, 10))
    p.add_argument("--k", type=positive_int, default=3)
    return p


@pytest.mark.parametrize("value", ["-1e-4", "-2.5E+3", "-3", "-.5", "-0.5"])
def test_negative_numbers_are_values_and_reach_the_type(value):
    """Plain argparse (3.11) takes ``-1e-4`` for an option and says "expected one argument"."""
    if value in ("-1e-4", "-2.5E+3"):
        plain = argparse.ArgumentParser(exit_on_error=False)
        plain.add_argument("--lr", type=float)
        with pytest.raises((argparse.ArgumentError, SystemExit)):
            plain.parse_args(["--lr", value])
    with pytest.raises(UsageError) as e:
        _parser().parse_args(["--lr", value])
    assert str(e.value) == f"argument --lr: must be > 0, got '{value}'"
    assert _parser().parse_args(["--shift", "-1e-1"]).shift == pytest.approx(-0.1)


def test_argparse_errors_are_one_line_exit_2(capsys):
    @cli_main
    def main(argv=None):
        _parser().parse_args(argv)
        return 0

    for argv, message in ((["--lr", "-1e-4"], "error: argument --lr: must be > 0, got '-1e-4'"),
                          (["--k", "0"], "error: argument --k: must be an integer >= 1, got '0'"),
                          (["--k"], "error: argument --k: expected one argument"),
                          (["--nope", "1"], "error: unrecognized arguments: --nope 1")):
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert err == message + "\n" and out == ""
    assert main(["--lr", "1e-4", "--k", "5"]) == 0
