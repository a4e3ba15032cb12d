"""The 2CR HTML report: one row per condition (commands, expected and measured scores, grade) and plots.

Rendered with jinja2 from ``report_template.html``, the matplotlib plots embedded as base64 ``data:`` URIs so
the report is one self-contained file (docs/2cr.md).
"""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path
from typing import Mapping

from .._errors import UsageError
from .._outputs import atomic_file
from .grading import NOT_RUN, grade
from .schema import Matrix
from .templating import Plan

TEMPLATE = Path(__file__).resolve().parent / "report_template.html"


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _plots(matrix: Matrix, measured: Mapping[str, Mapping[str, float]]) -> list[dict]:
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    plots = []
    figures: dict[str, dict[str, list]] = {}
    for c in matrix.conditions:
        if c.plot:
            figures.setdefault(c.plot.figure, {}).setdefault(c.plot.series, []).append(c)
    for fig_name, series in figures.items():
        fig, ax = plt.subplots(figsize=(7, 4))
        for i, (label, conds) in enumerate(series.items()):
            conds = sorted(conds, key=lambda c: c.plot.x)
            metric = matrix.metrics_of(conds[0])[0]
            color = f"C{i}"
            xs = [c.plot.x for c in conds]
            ax.plot(xs, [c.scores[metric] for c in conds], "-o", color=color, label=f"{label} (expected)")
            got = [(c.plot.x, measured[c.name][metric]) for c in conds if metric in measured.get(c.name, {})]
            if got:
                ax.plot(*zip(*got), "x", color=color, markersize=10, mew=2, label=f"{label} (measured)")
        ax.set_xscale("log")
        ax.set_xlabel("reranking depth (top-k candidates reranked)")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title(f"{fig_name}: {metric} vs depth")
        plots.append({"title": f"{metric} vs reranking depth (expected lines, measured crosses)", "src": _png(fig)})

    # expected vs measured, one bar pair per condition (first metric of each condition)
    names = [c.name for c in matrix.conditions]
    metric_of = {c.name: matrix.metrics_of(c)[0] for c in matrix.conditions}
    exp = [matrix.by_name[n].scores.get(metric_of[n], float("nan")) for n in names]
    got = [measured.get(n, {}).get(metric_of[n], float("nan")) for n in names]
    fig, ax = plt.subplots(figsize=(max(6, 0.38 * len(names) + 2), 4))
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], exp, width=0.4, label="expected", color="C0")
    ax.bar([x + 0.2 for x in xs], got, width=0.4, label="measured (blank: not run)", color="C1")
    ax.set_xticks(list(xs), names, rotation=60, ha="right", fontsize=8)
    metrics = sorted(set(metric_of.values()))
    ax.set_ylabel(" / ".join(metrics))
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title("expected vs measured per condition")
    plots.append({"title": "expected vs measured per condition", "src": _png(fig)})
    return plots


def render_report(matrix: Matrix, plans: Mapping[str, Plan], stored: Mapping[str, Mapping]) -> str:
    """HTML text for ``matrix``; ``stored`` is ``{condition: {"measured": {...}, "note": ...}}`` (may be empty)."""
    import jinja2

    measured = {n: dict(r.get("measured") or {}) for n, r in stored.items()}
    rows = []
    counts: dict[str, int] = {}
    for c in matrix.conditions:
        p = plans[c.name]
        m = measured.get(c.name, {})
        g = grade(c.scores, m, matrix.tolerance) if m else NOT_RUN
        counts[g] = counts.get(g, 0) + 1
        rows.append({
            "name": c.name, "aliases": c.aliases, "display": c.display, "group": c.group, "source": c.source,
            "description": c.description, "requires": c.requires, "grade": g,
            "note": (stored.get(c.name) or {}).get("note", ""),
            "scores": [{"metric": k, "expected": c.scores.get(k), "measured": m.get(k)} for k in matrix.metrics_of(c)],
            "commands": [s.command for s in p.steps] + [p.eval_command],
        })
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(TEMPLATE.read_text(encoding="utf-8"))
    return template.render(matrix=matrix, rows=rows, counts=counts, plots=_plots(matrix, measured),
                           generated=time.strftime("%Y-%m-%d %H:%M:%S %Z"))


def write_report(path: str, matrix: Matrix, plans: Mapping[str, Plan], stored: Mapping[str, Mapping]) -> None:
    import importlib.util

    missing = [m for m in ("jinja2", "matplotlib") if importlib.util.find_spec(m) is None]
    if missing:  # the report's libraries are an extra (setup.py): say so in one line, before any work
        raise UsageError(f"--generate-report needs {' and '.join(missing)}: pip install -e \".[report]\"")
    html = render_report(matrix, plans, stored)
    with atomic_file(path) as f:
        f.write(html)
