"""Rerank the top of a TREC run: fetch the needed documents, score them, merge, resume after a stop.

The corpus is streamed once keeping only the texts some query's top ``depth`` needs; hits below the depth
follow with scores ``-1, -2, ...``; finished queries go to ``OUTPUT.partial.jsonl`` so a rerun resumes
(docs/rerank.md).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping

from .._console import progress
from .._errors import UsageError
from .._outputs import atomic_file
from ..corpus import fetch_texts
from ..formats.runs import ranked, write_run


def resume_settings(reranker_spec: Mapping[str, Any], depth: int, run_path: str | os.PathLike) -> dict[str, Any]:
    """What an interrupted run must share with its rerun to resume: the reranker, the depth, the first-stage run."""
    return {**reranker_spec, "depth": depth, "run": str(Path(run_path).resolve()), "run_size": Path(run_path).stat().st_size}


def run_tag(model: str, tag: str | None = None) -> str:
    """The output's run tag: ``tag``, else the model folder's name; checked before any reranking starts."""
    tag = tag or Path(model.rstrip("/")).name
    if not tag or any(c.isspace() for c in tag):
        raise UsageError(f"run tag must be non-empty without whitespace, got {tag!r}")
    return tag


def sidecar_path(output: str | os.PathLike) -> Path:
    return Path(str(output) + ".partial.jsonl")


def load_sidecar(path: Path, settings: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Finished queries from an earlier, interrupted run with the same settings (torn last line dropped)."""
    if not path.exists():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    good, done = [], {}
    for n, line in enumerate(lines):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            if n == len(lines) - 1:  # interrupted while appending: drop it
                break
            raise UsageError(f"{path}:{n + 1}: corrupt resume file (delete it to start over)") from None
        if n == 0:
            if obj.get("settings") != json.loads(json.dumps(dict(settings))):
                raise UsageError(f"{path} was written with other settings ({obj.get('settings')}); delete it to "
                                 f"start over or rerun with the same settings")
        else:
            done[obj["qid"]] = obj["scores"]
        good.append(line)
    if len(good) != len(lines):
        with atomic_file(path) as f:  # rewrite without the torn line, atomically
            f.write("".join(g + "\n" for g in good))
    return done


def merge(hits: Mapping[str, float], scores: Mapping[str, float], depth: int) -> dict[str, float]:
    """The reranker's scores for the first-stage top ``depth``, then -1, -2, ... for the rest in first-stage order."""
    first = ranked(hits)
    merged = {d: float(scores[d]) for d, _ in first[:depth]}
    merged.update((d, -float(i)) for i, (d, _) in enumerate(first[depth:], 1))
    return merged


def check_depth(run: Mapping[str, Mapping[str, float]], depth: int, allow_short: bool) -> None:
    short = [q for q, h in run.items() if len(h) < depth]
    if short and not allow_short:
        q = short[0]
        raise UsageError(f"--depth {depth} exceeds the hits of {len(short)} of {len(run)} queries (query {q!r} has "
                         f"{len(run[q])}): lower --depth, or pass --allow-short to rerank what there is")


def rerank_run(run: Mapping[str, Mapping[str, float]], topics: Mapping[str, str], corpus: str,
               scorer: Callable[[str, list[str]], list[float]], depth: int, output: str | os.PathLike,
               settings: Mapping[str, Any], tag: str) -> int:
    """Rerank ``run`` with ``scorer(query, texts) -> scores``; write ``output``; returns lines written."""
    missing = [q for q in run if q not in topics]
    if missing:
        raise UsageError(f"{len(missing)} queries of the run are not in the topics (first: {missing[0]!r})")
    side = sidecar_path(output)
    done = load_sidecar(side, settings)
    todo = [q for q in run if q not in done]
    needed = {d for q in todo for d, _ in ranked(run[q], depth)}
    texts = fetch_texts(corpus, needed)

    new = not side.exists()
    with open(side, "a", encoding="utf-8") as f:
        if new:
            f.write(json.dumps({"settings": dict(settings)}) + "\n")
        with progress(total=len(run), initial=len(done), desc="rerank", unit="q") as bar:
            for qid in todo:
                docs = [d for d, _ in ranked(run[qid], depth)]
                scores = scorer(topics[qid], [texts[d] for d in docs])
                done[qid] = dict(zip(docs, map(float, scores)))
                f.write(json.dumps({"qid": qid, "scores": done[qid]}) + "\n")
                f.flush()
                os.fsync(f.fileno())
                bar.update(1)

    n = write_run(output, {qid: merge(run[qid], done[qid], depth) for qid in run}, tag, order=list(run))
    side.unlink()
    return n
