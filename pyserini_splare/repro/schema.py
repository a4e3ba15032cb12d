"""The reproduction-matrix schema: a YAML file of conditions, each with its commands and expected scores.

A matrix is a YAML file in this folder (``wsdm26.yaml``: every condition of NAVER's WSDM Cup 2026
system, Formal et al. 2026; ``local.yaml``: what runs on a laptop / in CI). Its shape follows
Pyserini's ``pyserini/2cr/*.yaml`` (condition -> command templates -> expected scores)::

    name, title, topics, qrels, metrics, tolerance {ok, okish}
    defaults:   {variable: value}           # template variables; flags and --set override them
    conditions:
      - name: splare-7b                     # unique; `aliases` may add short names (run1)
        display, group, source, description
        requires: [other-condition, ...]    # run first; their run files are {out[other-condition]}
        output: "{work}/runs/run.splare-7b.txt"
        steps:                              # commands, run in order with subprocess.run(check=True)
          - command: "python -m pyserini_splare.encode ... --threads {threads}"
            creates: "{work}/vectors/splare-7b"   # optional: skipped when this path exists
        scores: {nDCG@20: 0.498}
        plot: {figure: ..., series: ..., x: 100}  # optional: a point on a report curve

The evaluation step is implied: the condition's output is evaluated against ``qrels`` with the
matrix's (or the condition's) metrics, in-process (:mod:`.runner`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from .._errors import UsageError
from .grading import DEFAULT_TOLERANCE

MATRIX_DIR = Path(__file__).resolve().parent


def list_matrices() -> list[str]:
    return sorted(p.stem for p in MATRIX_DIR.glob("*.yaml"))


@dataclass
class Step:
    command: str
    creates: str | None = None


@dataclass
class Condition:
    name: str
    display: str
    output: str
    steps: list[Step]
    scores: dict[str, float]
    requires: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    group: str = ""
    source: str = ""
    description: str = ""
    plot: dict[str, Any] | None = None
    metrics: list[str] = field(default_factory=list)


@dataclass
class Matrix:
    name: str
    title: str
    topics: str
    qrels: str
    metrics: list[str]
    tolerance: dict[str, float]
    defaults: dict[str, str]
    conditions: list[Condition]
    description: str = ""
    path: Path | None = None

    def __post_init__(self):
        self.by_name: dict[str, Condition] = {}
        for c in self.conditions:
            for key in (c.name, *c.aliases):
                if key in self.by_name:
                    raise ValueError(f"{self.path}: duplicate condition name {key!r}")
                self.by_name[key] = c
        for c in self.conditions:
            for r in c.requires:
                if r not in self.by_name:
                    raise ValueError(f"{self.path}: condition {c.name!r} requires unknown condition {r!r}")
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
                raise ValueError(f"{self.path}: dependency cycle {' -> '.join(chain + (c.name,))}")
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


def _require(d: Mapping, key: str, where: str, kind=str):
    if key not in d:
        raise ValueError(f"{where}: missing key {key!r}")
    if not isinstance(d[key], kind):
        raise ValueError(f"{where}: {key!r} must be a {getattr(kind, '__name__', kind)}")
    return d[key]


def load_matrix(name_or_path: str) -> Matrix:
    """A matrix by name (``wsdm26``, ``local``) or a YAML path; malformed files raise ValueError."""
    import yaml

    p = Path(name_or_path)
    if not (p.suffix in (".yaml", ".yml") and p.is_file()):
        p = MATRIX_DIR / f"{name_or_path}.yaml"
        if not p.is_file():
            known = list_matrices()
            close = difflib.get_close_matches(name_or_path, known, n=2, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UsageError(f"unknown matrix {name_or_path!r}{hint} (known: {', '.join(known)}, or a .yaml path)")
    with open(p, encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    where = str(p)
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: not a mapping")
    conds = []
    for i, rc in enumerate(_require(raw, "conditions", where, list)):
        w = f"{where}: conditions[{i}]"
        if not isinstance(rc, dict):
            raise ValueError(f"{w}: not a mapping")
        steps = []
        for j, s in enumerate(rc.get("steps") or []):
            if isinstance(s, str):
                s = {"command": s}
            if not isinstance(s, dict) or not isinstance(s.get("command"), str):
                raise ValueError(f"{w}.steps[{j}]: expected a command string or {{command, creates}}")
            steps.append(Step(s["command"].strip(), s.get("creates")))
        scores = rc.get("scores") or {}
        if not isinstance(scores, dict) or not all(isinstance(v, (int, float)) for v in scores.values()):
            raise ValueError(f"{w}: scores must map metric names to numbers")
        conds.append(Condition(
            name=_require(rc, "name", w), display=rc.get("display", rc["name"]), output=_require(rc, "output", w),
            steps=steps, scores={str(k): float(v) for k, v in scores.items()}, requires=list(rc.get("requires") or []),
            aliases=list(rc.get("aliases") or []), group=rc.get("group", ""), source=rc.get("source", ""),
            description=" ".join(str(rc.get("description", "")).split()), plot=rc.get("plot"),
            metrics=list(rc.get("metrics") or [])))
    tol = dict(DEFAULT_TOLERANCE)
    tol.update(raw.get("tolerance") or {})
    if not 0 <= tol["ok"] <= tol["okish"]:
        raise ValueError(f"{where}: tolerance needs 0 <= ok <= okish, got {tol}")
    return Matrix(name=_require(raw, "name", where), title=raw.get("title", raw["name"]),
                  topics=_require(raw, "topics", where), qrels=_require(raw, "qrels", where),
                  metrics=list(_require(raw, "metrics", where, list)), tolerance=tol,
                  defaults={k: "" if v is None else str(v) for k, v in (raw.get("defaults") or {}).items()},
                  conditions=conds, description=" ".join(str(raw.get("description", "")).split()), path=p)
