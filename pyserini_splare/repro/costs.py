"""A plan before the bill: GPU-hours, wall time on N GPUs, disk and RAM for every step of a matrix.

``repro wsdm26 --plan --gpus 8 --gpu h100`` recognises each rendered command's stage and prices it with the
arithmetic of docs/wsdm26-reproduction.md ("Compute and disk at NeuCLIR1 scale") and Seismic's memory rule
(index/advice.py); docs/distributed.md, "A plan before the bill". A step that cannot be priced is listed as
such, never priced at 0; a matmul measured on this machine anchors the estimate.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

# Peak dense bf16 FLOP/s (vendor datasheets, SXM parts, no sparsity) and memory per GPU.
GPUS: dict[str, tuple[float, float]] = {
    "h100": (989e12, 80e9),
    "h200": (989e12, 141e9),
    "a100": (312e12, 80e9),
    "l40s": (362e12, 48e9),
    "b200": (2250e12, 180e9),
}
UTILISATION = (0.40, 0.25)  # best, worst share of peak reached by length-sorted encoder batches

# Corpora the matrices name: documents and tokens (title + text, Llama-3 tokenizer; docs/wsdm26-reproduction.md).
CORPORA: dict[str, tuple[float, float]] = {
    "irds:neuclir/1/multi": (10.0e6, 6.0e9),
}
TOKENS_PER_PAIR = 700  # query + document + Qwen3-Reranker template, at the seeds' 2048-token cap
QUERIES = 41  # WSDM Cup 2026 dev topics
BYTES_PER_POSTING_JSONL = 14
RUN_FILE_BYTES = 2e6
MODEL_LOAD_S = 120  # reading ~15 GB of bf16 weights from local disk, once per worker


@dataclass(frozen=True)
class Model:
    """What prices a forward pass: parameters per token, blocks, hidden size, and vectors it writes."""

    name: str
    params: float
    layers: int
    hidden: int
    l0: int | None = None  # mean active terms per document (sparse), from the seeds' tables
    dim: int | None = None  # embedding size (dense)

    def flops_per_token(self, context: int) -> float:
        return 2 * self.params + 4 * self.layers * context * self.hidden


# Shapes from docs/wsdm26-reproduction.md (per-block parameter counts of Llama-3.1-8B, Qwen3-8B/4B, XLM-R large).
MODELS: dict[str, Model] = {
    "splare": Model("SPLARE-7B (Llama-3.1-8B blocks 0-26 + 131k SAE)", 27 * 218e6 + 4096 * 131072, 27, 4096, l0=457),
    "splade-llm": Model("SPLADE-8B (Llama-3.1-8B + LM head)", 32 * 218e6 + 4096 * 128256, 32, 4096, l0=807),
    "qwen3-embed": Model("Qwen3-Embedding-8B", 36 * 193e6, 36, 4096, dim=4096),
    "milco": Model("MILCO (XLM-R large + connector)", 24 * 12.6e6 + 0.02e9, 24, 1024, l0=None),
}
RERANKER = Model("Qwen3-Reranker-4B", 36 * 101e6, 36, 2560)


@dataclass
class Cost:
    step: str
    flops: float = 0.0  # GPU work; 0 = CPU step
    gpu_note: str = ""
    disk: float | None = 0.0
    ram: float | None = 0.0
    unknown: str = ""  # why this step could not be priced
    shared_with: str = ""  # condition whose step this is (counted once in the total)


@dataclass
class ConditionPlan:
    name: str
    display: str
    costs: list[Cost] = field(default_factory=list)


def _flags(argv: Sequence[str]) -> tuple[str, dict[str, str]]:
    """(module, {flag: value}) of ``python -m pyserini_splare.X --flag value ...``."""
    module = ""
    if "-m" in argv:
        module = argv[argv.index("-m") + 1].rpartition(".")[2]
    flags: dict[str, str] = {}
    for i, a in enumerate(argv):
        if a.startswith("--"):
            nxt = argv[i + 1] if i + 1 < len(argv) else ""
            flags[a] = "" if nxt.startswith("--") else nxt
    return module, flags


def measure_flops(seconds: float = 1.0) -> dict[str, Any]:
    """Matmul FLOP/s of this machine in an 8B trunk's MLP shape (bf16 on a GPU, fp32 on the CPU)."""
    import torch

    cuda = torch.cuda.is_available()
    dev = "cuda" if cuda else "cpu"
    dtype = torch.bfloat16 if cuda else torch.float32
    m, k, n = (4096, 4096, 14336) if cuda else (256, 1024, 1024)
    a = torch.randn(m, k, device=dev, dtype=dtype)
    b = torch.randn(k, n, device=dev, dtype=dtype)
    (a @ b).sum().item()  # warm-up (kernel selection, lazy init)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        c = a @ b
        reps += 1
    if cuda:
        torch.cuda.synchronize()
    del c
    dt = time.perf_counter() - t0
    name = torch.cuda.get_device_name(0) if cuda else f"cpu ({torch.get_num_threads()} threads)"
    return {"device": name, "dtype": str(dtype).replace("torch.", ""), "flops": 2 * m * k * n * reps / dt}


def plan_costs(plans: Mapping[str, Any], matrix, variables: Mapping[str, str]) -> list[ConditionPlan]:
    """Price every step of every condition (``plans``: ``repro.templating.plan``'s rendered conditions)."""
    corpus = variables.get("corpus") or matrix.defaults.get("corpus", "")
    docs_tokens = CORPORA.get(corpus)
    made: dict[str, tuple[str, Cost, dict]] = {}  # creates path -> (condition, cost, artefact info)
    out = []
    for c in matrix.order(matrix.conditions):
        p = plans[c.name]
        cp = ConditionPlan(c.name, c.display)
        for s in p.steps:
            if s.creates and s.creates in made:
                owner, cost, _ = made[s.creates]
                cp.costs.append(replace(cost, shared_with=owner))
                continue
            cost, info = _price(shlex.split(s.command), docs_tokens, corpus, made)
            if s.creates:
                made[s.creates] = (c.name, cost, info)
            cp.costs.append(cost)
        out.append(cp)
    return out


def _price(argv: list[str], docs_tokens, corpus: str, made) -> tuple[Cost, dict]:
    module, f = _flags(argv)
    docs, tokens = docs_tokens or (None, None)
    if module == "encode" and "--prune-from" in f:
        src = made.get(f["--prune-from"])
        topk = int(f.get("--topk") or 0)
        if not src or src[2].get("postings") is None:
            return Cost(f"prune to top-{topk}", unknown="source vectors not priced"), {}
        n_docs, l0 = src[2]["documents"], min(src[2]["l0"], topk or src[2]["l0"])
        return Cost(f"prune to top-{topk} (CPU)", disk=n_docs * l0 * BYTES_PER_POSTING_JSONL, ram=0), \
            {"documents": n_docs, "l0": l0, "postings": n_docs * l0}
    if module == "encode":
        kind = f.get("--encoder", "").partition(":")[0]
        model = MODELS.get(kind)
        if model is None:
            return Cost(f"encode {kind}", unknown=f"no model shape for encoder kind {kind!r}"), {}
        if tokens is None:
            return Cost(f"encode {kind}", unknown=f"corpus {corpus!r} has no size in repro/costs.py"), {}
        context = min(int(f.get("--max-length") or 1024), int(tokens / docs))
        fpt = model.flops_per_token(context)
        note = f"{model.name}: {fpt / 1e9:.1f} GFLOP/token x {tokens / 1e9:.1f}B tokens"
        if model.dim:
            return Cost(f"encode {kind}", fpt * tokens, note, disk=docs * model.dim * 4), {"documents": docs}
        topk = int(f.get("--topk") or 0)
        if model.l0 is None:
            return Cost(f"encode {kind}", fpt * tokens, note, disk=None, ram=0,
                        unknown="vectors size depends on its l0 (mass pruning): ~14 GB per 100 terms/doc"), {}
        l0 = min(model.l0, topk) if topk else model.l0
        return Cost(f"encode {kind}", fpt * tokens, note, disk=docs * l0 * BYTES_PER_POSTING_JSONL), \
            {"documents": docs, "l0": l0, "postings": docs * l0}
    if module == "index":
        backend = f.get("--backend", "")
        src = made.get(f.get("--input", ""))
        if backend == "seismic" and src and src[2].get("postings"):
            # the measured rule (index/advice.py, docs/benchmarks.md "Seismic memory at NeuCLIR scale"):
            # bytes per kept posting grow with the document's terms; n_postings=auto keeps ~10 % at this scale
            from ..index.advice import seismic_rss

            size = int(seismic_rss(src[2]["documents"], True, terms_per_doc=src[2]["l0"]))
            return Cost("index seismic (CPU)", disk=size, ram=size), {}
        if backend == "faiss" and src:
            size = made[f["--input"]][1].disk
            return Cost("index faiss flat (CPU)", disk=size, ram=size), {}
        return Cost(f"index {backend} (CPU)", disk=None, ram=None, unknown="size not modelled"), {}
    if module == "rerank":
        depth = int(f.get("--depth") or 100)
        pairs = QUERIES * depth
        fpt = RERANKER.flops_per_token(TOKENS_PER_PAIR)
        return Cost(f"rerank depth {depth}", fpt * pairs * TOKENS_PER_PAIR,
                    f"{RERANKER.name}: {pairs:,} pairs x {TOKENS_PER_PAIR} tokens", disk=RUN_FILE_BYTES), {}
    if module in ("search", "fusion", "eval"):
        return Cost(f"{module} (CPU; seconds to minutes)", disk=RUN_FILE_BYTES), {}
    return Cost(module or argv[0], unknown="not a stage this plan knows"), {}


def _gb(x: float | None) -> str:
    if x is None:
        return "?"
    if x == 0:
        return "-"
    return f"{x / 1e9:,.0f} GB" if x >= 1e9 else f"{x / 1e6:,.0f} MB"


def _hours(h: float) -> str:
    return f"{h:,.2f}" if h < 10 else f"{h:,.0f}"


def format_plan(costs: list[ConditionPlan], *, gpus: int, gpu: str, measured: dict | None = None,
                corpus: str = "") -> str:
    peak, mem = GPUS[gpu]
    best, worst = UTILISATION
    lines = [f"plan on {gpus} x {gpu} ({peak / 1e12:,.0f} TFLOP/s bf16 peak, {mem / 1e9:.0f} GB each; encoders at "
             f"{100 * worst:.0f}-{100 * best:.0f}% of peak), corpus {corpus or '?'}"
             + (f" ({CORPORA[corpus][0] / 1e6:.1f}M documents, {CORPORA[corpus][1] / 1e9:.1f}B tokens)"
                if corpus in CORPORA else ""),
             "",
             f"{'condition':<34} {'step':<34} {'GPU-hours':>13} {f'wall on {gpus}':>15} {'disk':>9} {'RAM':>9}"]
    total_flops = 0.0
    for cp in costs:
        first = True
        for c in cp.costs:
            name = cp.name if first else ""
            first = False
            if c.unknown and not c.flops:
                lines.append(f"{name:<34} {c.step:<34} {'?':>13} {'':>15} {_gb(c.disk):>9} {_gb(c.ram):>9}  ({c.unknown})")
                continue
            if c.shared_with:
                lines.append(f"{name:<34} {c.step:<34} {'(done in ' + c.shared_with + ')':>29} {'':>9} {'':>9}")
                continue
            if c.flops:
                total_flops += c.flops
                lo, hi = c.flops / (peak * best) / 3600, c.flops / (peak * worst) / 3600
                wall_lo, wall_hi = lo / gpus + MODEL_LOAD_S / 3600, hi / gpus + MODEL_LOAD_S / 3600
                gh, wall = f"{_hours(lo)}-{_hours(hi)}", f"{_hours(wall_lo)}-{_hours(wall_hi)} h"
            else:
                gh, wall = "0", "CPU"
            lines.append(f"{name:<34} {c.step:<34} {gh:>13} {wall:>15} {_gb(c.disk):>9} {_gb(c.ram):>9}"
                         + (f"  ({c.unknown})" if c.unknown else ""))
            if c.gpu_note:
                lines.append(f"{'':<34}   {c.gpu_note}")
    lo, hi = total_flops / (peak * best) / 3600, total_flops / (peak * worst) / 3600
    lines += ["", f"total GPU work, each step once: {total_flops:.2e} FLOP = {_hours(lo)}-{_hours(hi)} {gpu}-hours, "
                  f"{_hours(lo / gpus)}-{_hours(hi / gpus)} h on {gpus} GPUs (plus one model load per worker and step)"]
    if measured:
        rate = measured["flops"]
        lines.append(f"measured here: {measured['device']}, {measured['dtype']} matmul {rate / 1e12:,.3f} TFLOP/s "
                     f"({100 * rate / peak:.2f}% of one {gpu}'s peak): this machine would need "
                     f"{_hours(total_flops / rate / 3600)} hours for the same work at that rate, "
                     f"{_hours(total_flops / (rate * best) / 3600)}-{_hours(total_flops / (rate * worst) / 3600)} at "
                     f"the encoders' {100 * worst:.0f}-{100 * best:.0f}% of it")
    return "\n".join(lines)


def plan_text(matrix, plans, variables: Mapping[str, str], *, gpus: int = 8, gpu: str = "h100",
              measure: bool = True) -> str:
    """What ``repro MATRIX --plan`` prints."""
    from .._errors import UsageError

    if gpu not in GPUS:
        raise UsageError(f"--gpu {gpu!r}: choose from {', '.join(GPUS)}")
    if gpus < 1:
        raise UsageError(f"--gpus must be >= 1, got {gpus}")
    corpus = variables.get("corpus") or matrix.defaults.get("corpus", "")
    measured = measure_flops() if measure else None
    return format_plan(plan_costs(plans, matrix, variables), gpus=gpus, gpu=gpu, measured=measured, corpus=corpus)
