"""Training flags from settings dataclasses, through transformers' ``HfArgumentParser`` (docs/training.md).

A command declares its settings once, as a dataclass whose fields carry their help and allowed values
(``metadata={"check": ...}``, held by :func:`check_settings` whatever the source); a recipe sets the parser's
defaults and flags override them (:func:`parse`). The parser keeps the CLI contract through
:class:`.._argtypes.ParserRules`.
"""

from __future__ import annotations

import argparse
import copy
import re
from dataclasses import MISSING, field, fields
from typing import Any, Callable, Sequence

from .._argtypes import ParserRules
from .._errors import UsageError

# The rules a field may declare as metadata["check"]: (test, what the error says).
RULES = {"positive": (lambda v: v > 0, "must be positive"),
         "non-negative": (lambda v: v >= 0, "must be >= 0"),
         "fraction": (lambda v: 0 <= v <= 1, "must be in [0, 1]")}
# Metadata keys of ours, not argparse's (HfArgumentParser passes a field's metadata to add_argument).
OWN_METADATA = ("check", "one_of")


def setting(default: Any = MISSING, help: str | None = None, **rules) -> Any:
    """A settings field: its default (none: a required flag), help text and rules (``check=``, ``one_of=``)."""
    return field(default=default, metadata={**({"help": help} if help else {}), **rules})



class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """One spelling per flag (``--train-data``, not also HfArgumentParser's ``--train_data`` alias), a switch
    shown as a switch (``--resume``, though ``--resume false`` is accepted too) and "(default X)" where a default
    means something (not None, not False)."""

    def _format_action_invocation(self, action):
        return super()._format_action_invocation(_as_shown(action))

    def _format_usage(self, usage, actions, groups, prefix):
        return super()._format_usage(usage, [_as_shown(a) for a in actions], groups, prefix)

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if default is not None and default is not False and default != argparse.SUPPRESS and "default" not in text \
                and action.option_strings:
            shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else default
            text += f" (default {shown})"
        return text


def _as_shown(action):
    """The copy of an action that help and usage show: the hyphenated flag only; a switch without a value."""
    switch = action.nargs == "?" and action.const is True
    if not switch and not any("_" in s for s in action.option_strings):
        return action
    a = copy.copy(action)
    a.option_strings = [s for s in action.option_strings if "_" not in s] or action.option_strings[:1]
    if switch:
        a.nargs = 0
    return a


def _one_line_error(parser, message):
    # argparse names a flag by all its spellings ("--batch_size/--batch-size"): the user typed the hyphenated one
    message = re.sub(r"--\w+_\w*/(--[\w-]+)", r"\1", message)
    raise UsageError(f"{message} (see --help)")


def _parser_class():
    from transformers import HfArgumentParser

    class ArgumentParser(ParserRules, HfArgumentParser):
        def __init__(self, dataclass_types, **kwargs):
            kwargs.setdefault("formatter_class", HelpFormatter)
            super().__init__(dataclass_types, **kwargs)

        error = _one_line_error

        @staticmethod
        def _parse_dataclass_field(parser, field):
            if any(k in field.metadata for k in OWN_METADATA):
                field = copy.copy(field)
                field.metadata = {k: v for k, v in field.metadata.items() if k not in OWN_METADATA}
            HfArgumentParser._parse_dataclass_field(parser, field)

    return ArgumentParser


def make_parser(settings: type, **kwargs) -> argparse.ArgumentParser:
    """The flags of the ``settings`` dataclass (``prog``, ``description``, ``epilog`` as for argparse)."""
    return _parser_class()(settings, **kwargs)


def check_types(settings: type, values: dict[str, Any], where: str) -> None:
    """A recipe's values have the types of the fields they set (YAML's ``5e-5`` is a string: it is converted as
    the flag would convert it); a wrong type is one line naming the setting."""
    import typing

    hints = typing.get_type_hints(settings)
    for f in fields(settings):
        if f.name not in values or values[f.name] is None:
            continue
        v = values[f.name]
        allowed = typing.get_args(hints[f.name]) or (hints[f.name],)
        base = [typing.get_origin(t) or t for t in allowed if t is not type(None)]
        if isinstance(v, str) and str not in base:
            for t in (t for t in base if t in (int, float)):  # not bool("false"), not list("query")
                try:
                    values[f.name] = t(v)
                    break
                except (TypeError, ValueError):
                    continue
            else:
                raise UsageError(f"{where}: {f.name} must be {' or '.join(t.__name__ for t in base)}, got {v!r}")
            continue
        ok = any(isinstance(v, t) and not (t in (int, float) and isinstance(v, bool)) for t in base) or \
            (float in base and isinstance(v, int) and not isinstance(v, bool))
        if not ok:
            raise UsageError(f"{where}: {f.name} must be {' or '.join(t.__name__ for t in base)}, got {v!r}")
        if float in base and isinstance(v, int):
            values[f.name] = float(v)


def check_settings(settings) -> None:
    """Each field's value against the rule its metadata declares (None: not set, nothing to check)."""
    for f in fields(settings):
        value = getattr(settings, f.name)
        if value is None:
            continue
        flag = "--" + f.name.replace("_", "-")
        rule = f.metadata.get("check")
        if rule and not RULES[rule][0](value):
            raise UsageError(f"{flag} {RULES[rule][1]}, got {value}")
        allowed = f.metadata.get("one_of")
        if allowed and value not in allowed:
            raise UsageError(f"{flag} must be one of {', '.join(allowed)}, got {value!r}")


def parse(parser, argv: Sequence[str] | None, defaults_from: Callable[[str], dict[str, Any]] | None = None):
    """Parse ``argv`` into the parser's dataclass. With ``defaults_from``, ``--recipe NAME`` (read first, alone)
    gives the defaults that the other flags override."""
    if defaults_from is not None:
        pre = type("RecipeOnly", (argparse.ArgumentParser,), {"error": _one_line_error})(add_help=False)
        pre.add_argument("--recipe", default=None)
        known, _ = pre.parse_known_args(argv)
        if known.recipe:
            parser.set_defaults(**defaults_from(known.recipe))
    settings, unknown = parser.parse_args_into_dataclasses(args=argv, look_for_args_file=False,
                                                           return_remaining_strings=True)
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return settings
