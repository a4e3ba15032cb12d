"""The reproduction-matrix schema: a YAML file of conditions, each with its commands and expected scores.

The shape follows Pyserini's ``pyserini/2cr/*.yaml`` (condition -> command templates -> expected scores) and is
documented with an example in docs/2cr.md; the evaluation step is implied (:mod:`.runner`).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Iterable

from pydantic import Field, field_validator
from pydantic.dataclasses import dataclass

from .._errors import UsageError
from .._schemas import STRICT
from .grading import DEFAULT_TOLERANCE

MATRIX_DIR = Path(__file__).resolve().parent


def list_matrices() -> list[str]:
    return sorted(p.stem for p in MATRIX_DIR.glob("*.yaml"))


def _one_line(text: Any) -> str:
    return " ".join(str(text or "").split())


# Declared with pydantic (STRICT: extra="forbid", so a misspelt key such as `scroes:` is an error, not a
# condition without expected scores); a malformed file is one line naming the file and the field.


@dataclass(config=STRICT)
class Step:
    command: str
    creates: str | None = None

    def __post_init__(self):
        self.command = self.command.strip()


@dataclass(config=STRICT)
class Plot:
    """A point on a report curve: ``figure`` and ``series`` name the curve, ``x`` its abscissa."""

    figure: str
    series: str
    x: float


@dataclass(config=STRICT)
class Condition:
    name: str
    output: str
    steps: list[Step]
    scores: dict[str, float] = Field(default_factory=dict)
    display: str = ""
    requires: list[str] = Field(default_factory=list)
    aliases: list[str] = Field(default_factory=list)
    group: str = ""
    source: str = ""
    description: str = ""
    plot: Plot | None = None
    metrics: list[str] = Field(default_factory=list)

    @field_validator("steps", mode="before")
    @classmethod
    def _commands(cls, steps):
        # A step is a command string, or {command, creates}.
        return [{"command": s} if isinstance(s, str) else s for s in steps or []]

    @field_validator("scores", mode="before")
    @classmethod
    def _no_scores(cls, value):
        return {} if value is None else value  # `scores:` with nothing under it

    @field_validator("requires", "aliases", "metrics", mode="before")
    @classmethod
    def _no_names(cls, value):
        return [] if value is None else value

    def __post_init__(self):
        self.display = self.display or self.name
        self.description = _one_line(self.description)


@dataclass(config=STRICT)
class Tolerance:
    ok: float = Field(DEFAULT_TOLERANCE["ok"], ge=0)
    okish: float = DEFAULT_TOLERANCE["okish"]

    def __post_init__(self):
        if not self.ok <= self.okish:
            raise ValueError(f"tolerance needs 0 <= ok <= okish, got ok={self.ok}, okish={self.okish}")


@dataclass(config=STRICT)
class Matrix:
    name: str
    topics: str
    qrels: str
    metrics: list[str]
    conditions: list[Condition]
    title: str = ""
    tolerance: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_TOLERANCE))
    defaults: dict[str, str] = Field(default_factory=dict)
    description: str = ""

    @field_validator("tolerance", mode="before")
    @classmethod
    def _tolerance(cls, value):
        from dataclasses import asdict

        return asdict(Tolerance(**(value or {}))) if isinstance(value, dict) or value is None else value

    @field_validator("defaults", mode="before")
    @classmethod
    def _defaults(cls, value):
        # Template variables are text: `threads: 16` is "16", an empty value "".
        if isinstance(value, dict):
            return {k: "" if v is None else str(v) for k, v in value.items()}
        return value if value is not None else {}

    def __post_init__(self):
        self.title = self.title or self.name
        self.path: Path | None = None  # the YAML file, set by load_matrix
        self.description = _one_line(self.description)
        self.by_name: dict[str, Condition] = {}
        for c in self.conditions:
            for key in (c.name, *c.aliases):
                if key in self.by_name:
                    raise ValueError(f"duplicate condition name {key!r}")
                self.by_name[key] = c
        for c in self.conditions:
            for r in c.requires:
                if r not in self.by_name:
                    raise ValueError(f"condition {c.name!r} requires unknown condition {r!r}")
        self.order(self.conditions)  # raises on cycles

    def get(self, name: str) -> Condition:
        """A condition by name or alias; unknown names are a UsageError suggesting close names."""
        if name in self.by_name:
            return self.by_name[name]
        close = difflib.get_close_matches(name, list(self.by_name), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UsageError(f"unknown condition {name!r} in matrix {self.name}{hint} (--list-conditions lists them)")

    def order(self, wanted: Iterable[Condition]) -> list[Condition]:
        """``wanted`` plus everything they require, dependencies first (a topological order)."""
        out: list[Condition] = []
        state: dict[str, int] = {}

        def visit(c: Condition, chain: tuple[str, ...]) -> None:
            if state.get(c.name) == 2:
                return
            if state.get(c.name) == 1:
                raise ValueError(f"dependency cycle {' -> '.join(chain + (c.name,))}")
            state[c.name] = 1
            for r in c.requires:
                visit(self.by_name[r], chain + (c.name,))
            state[c.name] = 2
            out.append(c)

        for c in wanted:
            visit(c, ())
        return out

    def metrics_of(self, c: Condition) -> list[str]:
        return c.metrics or list(c.scores) or self.metrics


def load_matrix(name_or_path: str) -> Matrix:
    """A matrix by name (``wsdm26``, ``local``) or a YAML path; a malformed file is a UsageError naming the
    file and the field."""
    import yaml

    from .._schemas import validated

    p = Path(name_or_path)
    if not (p.suffix in (".yaml", ".yml") and p.is_file()):
        p = MATRIX_DIR / f"{name_or_path}.yaml"
        if not p.is_file():
            known = list_matrices()
            close = difflib.get_close_matches(name_or_path, known, n=2, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UsageError(f"unknown matrix {name_or_path!r}{hint} (known: {', '.join(known)}, or a .yaml path)")
    with open(p, encoding="utf-8") as f:
        try:
            raw = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise UsageError(f"{p}: not YAML ({_one_line(e)})") from None
    if not isinstance(raw, dict):
        raise UsageError(f"{p}: not a mapping")
    matrix = validated(Matrix, raw, str(p))
    matrix.path = p
    return matrix
