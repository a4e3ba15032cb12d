"""Mine training data with this toolkit: hard negatives from its own indexes, teacher scores from its reranker.

Negatives are drawn at random (seeded) from each query's top ``depth`` hits minus its positives, as
FlagEmbedding's ``hn_mine.py`` samples from a rank range (the very top holds the most unjudged positives);
teachers and output: docs/training.md, "Training data".
"""

from __future__ import annotations

import json
import os
import random
import sys
from typing import Callable, Mapping, Sequence

from .._console import progress
from .._errors import UsageError
from .._outputs import atomic_file
from ..corpus import fetch_texts

TEACHER_KINDS = ("rerank", "cross-encoder", "encoder")
Scorer = Callable[[str, Sequence[str]], list[float]]


def read_positives(path: str | os.PathLike) -> dict[str, set[str]]:
    """``qid<TAB>docid`` (or whitespace-separated) lines -> {qid: {docid, ...}}."""
    out: dict[str, set[str]] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) != 2:
                    raise UsageError(f"{path}:{n}: expected 'qid docid', got {len(parts)} columns")
                out.setdefault(parts[0], set()).add(parts[1])
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not valid UTF-8") from None
    if not out:
        raise UsageError(f"{path}: no positives")
    return out


def positives_from_qrels(spec: str, data_dir: str | None = None) -> dict[str, set[str]]:
    """Judged-relevant (grade > 0) documents per query of TREC qrels (a file or registered name)."""
    from ..topics import get_qrels

    out = {q: {d for d, g in docs.items() if g > 0} for q, docs in get_qrels(spec, data_dir).judgments.items()}
    return {q: d for q, d in out.items() if d}


def load_teacher(spec: str, device: str = "cpu", batch_size: int = 16) -> tuple[Scorer, dict]:
    """``KIND:PATH`` (kinds: :data:`TEACHER_KINDS`) -> (scorer(query, texts) -> scores, its description)."""
    kind, sep, path = spec.partition(":")
    if not sep or kind not in TEACHER_KINDS or not path:
        raise UsageError(f"--teacher {spec!r}: expected KIND:PATH with KIND one of {', '.join(TEACHER_KINDS)}")
    if kind == "rerank":
        from ..rerank.qwen3 import Qwen3Reranker

        try:
            r = Qwen3Reranker(path, device=device)
        except ValueError as e:
            raise UsageError(str(e)) from None
        return (lambda q, docs: r.score(q, list(docs), batch_size=batch_size)), {"teacher": spec}
    if kind == "cross-encoder":
        from sentence_transformers import CrossEncoder

        try:
            ce = CrossEncoder(path, device=device, local_files_only=os.path.isdir(path))
        except (OSError, ValueError) as e:
            raise UsageError(f"cannot load cross-encoder {path}: {str(e).splitlines()[0] if str(e) else e}") from None
        return (lambda q, docs: [float(s) for s in ce.predict([(q, d) for d in docs], batch_size=batch_size,
                                                               show_progress_bar=False)]), {"teacher": spec}
    from ..encode import SparseEncoder, load_encoder

    enc = load_encoder(path, device=device)
    if not isinstance(enc, SparseEncoder):
        raise UsageError(f"--teacher {spec!r}: encoder teachers must be sparse encoders")

    def score(q: str, docs: Sequence[str]) -> list[float]:
        qv = enc.encode([q], "query")[0].to_dict()
        return [float(sum(w * qv.get(t, 0.0) for t, w in dv.to_dict().items()))
                for dv in enc.encode(list(docs), "doc")]

    return score, {"teacher": spec}


def search_index(index: str, queries: Mapping[str, str], k: int, *, encoder: str | None, device: str,
                 threads: int, batch_size: int = 64) -> dict[str, list[tuple[str, float]]]:
    """Top-``k`` hits per query from any index of this toolkit, through its own search API."""
    from ..formats.index_meta import read_index_meta
    from ..index.backends import get_backend
    from ..search.registry import open_searcher
    from ..search.queries import encode_topics

    meta = read_index_meta(index)
    backend = get_backend(meta["backend"])
    if backend.query_kind == "text":
        if encoder:
            raise UsageError(f"a {backend.name} index is searched with the query text: drop --encoder")
        q = dict(queries)
    else:
        if not encoder:
            raise UsageError(f"a {backend.name} index is searched with encoded queries: pass --encoder SPEC")
        q = encode_topics(encoder, queries, backend, meta, device=device)
    out: dict[str, list[tuple[str, float]]] = {}
    qids = list(q)
    with open_searcher(index) as searcher, progress(total=len(qids), desc=f"mine {backend.name}", unit="q") as bar:
        for s in range(0, len(qids), batch_size):
            part = {x: q[x] for x in qids[s:s + batch_size]}
            out.update(searcher.batch_search(part, k=k, threads=threads))
            bar.update(len(part))
    return out


def mine(queries: Mapping[str, str], positives: Mapping[str, set[str]], corpus: str, index: str, output: str, *,
         negatives: int = 8, depth: int = 100, encoder: str | None = None, teacher: str | None = None,
         seed: int = 0, device: str = "cpu", threads: int = 1, prompt: str | None = None) -> dict:
    """Write FlagEmbedding JSONL to ``output``; returns counts {written, skipped_no_text, skipped_short}."""
    if negatives < 0 or depth < 1:
        raise UsageError(f"need --negatives >= 0 and --depth >= 1, got {negatives} and {depth}")
    if negatives > depth:
        raise UsageError(f"--negatives {negatives} exceeds --depth {depth}")
    qids = [q for q in queries if positives.get(q)]
    if not qids:
        raise UsageError("no query has a positive (do the query ids of --queries and --qrels/--positives match?)")
    scorer = load_teacher(teacher, device=device)[0] if teacher else None
    hits = search_index(index, {q: queries[q] for q in qids}, depth + max(len(positives[q]) for q in qids),
                        encoder=encoder, device=device, threads=threads)
    rng = random.Random(seed)
    chosen: dict[str, list[str]] = {}
    short = 0
    for q in qids:
        cands = [d for d, _ in hits.get(q, []) if d not in positives[q]][:depth]
        if len(cands) < negatives:
            short += 1
            continue
        chosen[q] = rng.sample(cands, negatives) if negatives else []
    needed = {d for q in chosen for d in (*chosen[q], *positives[q])}
    texts = fetch_texts(corpus, needed, of="the index or positives", hint="")
    n = 0
    with atomic_file(output) as f, progress(total=len(chosen), desc="write", unit="q") as bar:
        for q in chosen:
            pos = sorted(positives[q])
            row = {"query": queries[q], "pos": [texts[d] for d in pos], "neg": [texts[d] for d in chosen[q]]}
            if scorer is not None:
                scores = scorer(queries[q], row["pos"] + row["neg"])
                row["pos_scores"], row["neg_scores"] = scores[:len(pos)], scores[len(pos):]
            if prompt:
                row["prompt"] = prompt
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
            bar.update(1)
    if short:
        print(f"skipped {short} queries with fewer than {negatives} non-positive hits in the top {depth}",
              file=sys.stderr)
    return {"written": n, "skipped_short": short, "queries": len(qids)}
