"""Running a matrix's conditions: their steps as subprocesses, the evaluation in-process, the results file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

from .._errors import UsageError
from .._outputs import atomic_file
from ..eval import evaluate
from .grading import FAIL, NOT_RUN, grade, scores_text
from .schema import Condition, Matrix
from .templating import Plan, command_argv

RESULTS_FILE = "repro-results.json"


@dataclass
class Result:
    name: str
    grade: str
    measured: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    note: str = ""


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# The stage CLIs that take --overwrite (docs/errors.md: an existing output is refused without it).
_OVERWRITES = {f"pyserini_splare.{m}" for m in ("encode", "index", "search", "fusion", "export",
                                                   "testing.tiny_models")}


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
                    argv = command_argv(s.command)
                    if force and s.creates and Path(s.creates).exists() and _OVERWRITES.intersection(argv[:3]):
                        argv.append("--overwrite")  # every stage CLI refuses an existing output without it
                    if s.creates:  # the stage CLIs refuse a missing parent folder (a typo); these are the matrix's
                        Path(s.creates).parent.mkdir(parents=True, exist_ok=True)
                    _log(f"[{c.name}] $ {' '.join(argv)}")
                    runner(argv, check=True)
                    if s.creates and not Path(s.creates).exists():
                        raise subprocess.CalledProcessError(0, s.command, stderr=f"did not create {s.creates}")
            elif p.steps:
                _log(f"[{c.name}] reusing {p.output} (--force reruns)")
            # the evaluation `p.eval_command` prints, called in-process (one reading of the scores)
            _log(f"[{c.name}] evaluating: {p.eval_command}")
            measured = evaluate(matrix.qrels, p.output, matrix.metrics_of(c))
        except _NotRun as e:
            results[c.name] = Result(c.name, NOT_RUN, note=str(e))
            _log(f"[{c.name}] not run: {e}")
            continue
        except UsageError as e:  # the evaluation refused the run (malformed, wrong qrels, ...)
            results[c.name] = Result(c.name, FAIL, seconds=time.time() - t0, note=f"evaluation failed: {e}")
            _log(f"[{c.name}] FAIL: evaluation failed: {e}")
            continue
        except (subprocess.CalledProcessError, OSError) as e:
            detail = (getattr(e, "stderr", None) or "").strip().splitlines()[-1:] or [""]
            note = f"command failed: {e}" + (f" ({detail[0]})" if detail[0] else "")
            results[c.name] = Result(c.name, FAIL, seconds=time.time() - t0, note=note)
            _log(f"[{c.name}] FAIL: {note}")
            continue
        g = grade(c.scores, measured, matrix.tolerance)
        results[c.name] = Result(c.name, g, measured, time.time() - t0)
        _log(f"[{c.name}] {g}: {scores_text(measured, c.scores)}")
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
