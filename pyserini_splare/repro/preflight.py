"""Checks of a reproduction run's inputs before its first step starts.

Every step's models and corpora are checked first by the encode CLI's own checks
(:mod:`pyserini_splare.encode.preflight`), so a missing checkpoint is one line naming the condition, the step
and the ``--set`` that changes it, not a NeuCLIR1 download ending in tracebacks.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Callable, Mapping, Sequence

from .._errors import UsageError
from .schema import Condition, Matrix, Step
from .templating import Plan, command_argv


def _value(argv: Sequence[str], flag: str) -> str | None:
    for i, a in enumerate(argv[:-1]):
        if a == flag:
            return argv[i + 1]
    for a in argv:
        if a.startswith(flag + "="):
            return a[len(flag) + 1:]
    return None


def _checks(module: str, argv: Sequence[str]) -> list[tuple[str, str, Callable[[str], None]]]:
    """(flag, value, check) for what a stage CLI's arguments name."""
    from ..encode.preflight import check_corpus, check_encoder, check_model_source

    trust = "--trust-remote-code" in argv
    wanted = {
        "pyserini_splare.encode": [("--encoder", lambda v: check_encoder(v, trust_remote_code=trust)),
                                   ("--corpus", check_corpus)],
        "pyserini_splare.search": [("--encoder", lambda v: check_encoder(v, trust_remote_code=trust))],
        "pyserini_splare.rerank": [("--model", lambda v: check_model_source("reranker", v)),
                                   ("--corpus", check_corpus)],
    }.get(module, [])
    out = []
    for flag, check in wanted:
        value = _value(argv, flag)
        if value is not None:
            out.append((flag, value, check))
    return out


def _hint(template: Step, flag: str) -> str:
    """``--set NAME=...`` for the template variables the flag's value came from."""
    raw = _value(shlex.split(template.command), flag) or ""
    names = [n for n in re.findall(r"\{(\w+)\}", raw) if n not in ("work", "data", "topics", "qrels")]
    return f" (pass --set {names[0]}=...)" if names else ""


def _made_before(value: str, made: Sequence[Path]) -> bool:
    """Whether ``value`` (a path, or ``KIND:PATH``) is, or lies under, a path an earlier step creates."""
    path = Path(value.split(":", 1)[1] if ":" in value and not Path(value).exists() else value).absolute()
    return any(path == m or m in path.parents for m in made)


def steps_to_run(matrix: Matrix, plans: Mapping[str, Plan], wanted: Sequence[Condition], force: bool):
    """(condition, step number, rendered step, template step) of every step the runner would start,
    by the runner's rules: a condition whose run file exists is reused, a step whose output exists is
    skipped, unless ``force``."""
    for c in matrix.order(wanted):
        p = plans[c.name]
        if not p.steps or (Path(p.output).is_file() and not force):
            continue
        for i, (s, t) in enumerate(zip(p.steps, c.steps), 1):
            if s.creates and Path(s.creates).exists() and not force:
                continue
            yield c, i, s, t


def check_steps(matrix: Matrix, plans: Mapping[str, Plan], wanted: Sequence[Condition], *,
                force: bool = False) -> None:
    """UsageError for the first model or corpus that a step about to run cannot load or read. A model or
    corpus that an earlier step about to run ``creates`` (the local matrix builds its tiny models and
    ONNX export) is not there yet: it is left to that step."""
    done: set[tuple[str, str]] = set()
    made: list[Path] = []
    for c, i, step, template in steps_to_run(matrix, plans, wanted, force):
        argv = command_argv(step.command)
        if step.creates:
            made.append(Path(step.creates).absolute())
        if len(argv) < 3 or argv[1] != "-m":
            continue
        module = argv[2]
        for flag, value, check in _checks(module, argv):
            if (flag, value) in done or _made_before(value, made[:-1] if step.creates else made):
                continue
            try:
                check(value)
            except UsageError as e:
                raise UsageError(f"condition {c.name}, step {i} ({module.rsplit('.', 1)[-1]}): {e}"
                                 f"{_hint(template, flag)}") from None
            done.add((flag, value))
