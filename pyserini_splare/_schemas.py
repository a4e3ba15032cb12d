"""Config files read through pydantic: one shared way to validate a file and report its first problem.

Every config file is a pydantic model or dataclass with :data:`STRICT` (``extra="forbid"``: a misspelt key is
refused, not replaced by its default); :func:`validated` turns a ``ValidationError`` into the one line
``FILE: FIELD: what is wrong`` (docs/errors.md). pydantic is imported at module import: import this only
where a file is read.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import ConfigDict, TypeAdapter, ValidationError

from ._errors import UsageError

# extra="forbid": unknown keys are errors. Assignments are not re-validated (configs are built once).
STRICT = ConfigDict(extra="forbid")

T = TypeVar("T")
_UNKNOWN = ("extra_forbidden", "unexpected_keyword_argument")


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def describe(error: ValidationError, known: list[str] | None = None) -> str:
    """One line for a pydantic ``ValidationError``: unknown keys together, then the first other problem
    as ``FIELD: message`` (pydantic's "Value error, " prefix dropped: our validators' messages are whole)."""
    errs = error.errors(include_url=False)
    unknown = [e for e in errs if e["type"] in _UNKNOWN]
    if unknown:
        where = {_loc(e["loc"][:-1]) for e in unknown}
        keys = sorted(str(e["loc"][-1]) for e in unknown)
        prefix = f"{next(iter(where))}: " if len(where) == 1 and next(iter(where)) else ""
        hint = f" (known: {', '.join(known)})" if known else ""
        return f"{prefix}unknown keys {keys}{hint}"
    first = errs[0]
    msg = str(first["msg"]).removeprefix("Value error, ")
    loc = _loc(first["loc"])
    if first["type"] not in ("value_error", "assertion_error") and "input" in first:
        got = first["input"]
        if not isinstance(got, (dict, list)):
            msg += f", got {got!r}"
    more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
    return f"{loc}: {msg}{more}" if loc else f"{msg}{more}"


def validated(schema: type[T], data: Any, where: str, known: list[str] | None = None) -> T:
    """``data`` validated as ``schema``; a UsageError ``WHERE: FIELD: message`` (one line) otherwise."""
    try:
        return TypeAdapter(schema).validate_python(data)
    except ValidationError as e:
        raise UsageError(f"{where}: {describe(e, known)}") from None
