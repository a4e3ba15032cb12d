"""What ``python -m pyserini_splare.repro`` prints: the condition list, a dry run's commands, the results table."""

from __future__ import annotations

from typing import Iterable, Mapping

from .grading import scores_text
from .runner import Result
from .schema import Condition, Matrix
from .templating import Plan


def conditions_text(matrix: Matrix) -> str:
    """``--list-conditions``: one line per condition with its expected scores and dependencies."""
    lines = [f"{matrix.name}: {matrix.title}", f"topics {matrix.topics}, qrels {matrix.qrels}", ""]
    width = max(len(c.name) for c in matrix.conditions)
    for c in matrix.conditions:
        scores = " ".join(f"{k}={v:.4f}" for k, v in c.scores.items()) or "(no expected score)"
        extra = []
        if c.aliases:
            extra.append(f"alias {', '.join(c.aliases)}")
        if c.requires:
            extra.append(f"requires {', '.join(c.requires)}")
        if not c.steps:
            extra.append("external run")
        lines.append(f"{c.name:<{width}}  {scores:<16} {c.display}" + (f"  [{'; '.join(extra)}]" if extra else ""))
    return "\n".join(lines)


def dry_run_text(matrix: Matrix, plans: Mapping[str, Plan], selected: Iterable[Condition]) -> str:
    """``--dry-run``: the rendered commands of ``selected`` and what they require, dependencies first."""
    out = []
    for c in matrix.order(selected):
        p = plans[c.name]
        expected = ", ".join(f"{k} {v:.4f}" for k, v in c.scores.items()) or "no expected score"
        out.append(f"# {c.name}: {c.display} (expected {expected})")
        if not p.steps:
            out.append(f"# external run file: {p.output}")
        for s in p.steps:
            out.append(s.command + (f"    # skipped if {s.creates} exists" if s.creates else ""))
        out.append(p.eval_command)
        out.append("")
    return "\n".join(out) + "\n"


def results_text(matrix: Matrix, results: Mapping[str, Result]) -> str:
    """The table printed after a run: grade and measured (expected) scores per condition."""
    lines = [f"{'condition':<40} {'grade':<8} measured (expected)"]
    for name, r in results.items():
        c = matrix.get(name)
        shown = scores_text(r.measured, c.scores, label="")
        lines.append(f"{name:<40} {r.grade:<8} {shown or r.note}")
    return "\n".join(lines)
