#!/usr/bin/env python
"""The worked CPU example of docs/training.md, end to end, with before/after numbers.

1. CACM as title -> abstract pairs (``python -m pyserini_splare.testing.cacm_pairs``), a fifth of the documents held out;
2. a BM25 index of the abstracts (``python -m pyserini_splare.index --backend bm25``);
3. training data mined with the toolkit (``python -m pyserini_splare.train.data``: BM25 hard negatives);
4. ``python -m pyserini_splare.train`` from SPLADE-tiny (or a small SPLARE checkpoint, ``--encoder splare:DIR``)
   with the held-out pairs as its dev set (MRR@10 over all abstracts, before and after);
5. CACM's own 52 judged queries (never trained on), before and after: AP, nDCG@10 over the 3,204 documents,
   through the same encode -> exact index -> search -> eval path.

Every step is a CLI of the toolkit run in a subprocess, as a user would run it. Prints one JSON line.

    python scripts/train_cacm.py --encoder splade:PATH/TO/splade-tiny --work /tmp/cacm-train --max-steps 300
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def sh(*args: str) -> None:
    subprocess.run([sys.executable, *args], check=True, cwd=REPO)


def cacm_eval(spec: str, cacm: Path, work: Path) -> dict[str, float]:
    """AP and nDCG@10 of ``spec`` on CACM's 52 judged queries over the 3,204 documents."""
    sys.path.insert(0, str(REPO))
    from pyserini_splare.encode import load_encoder
    from pyserini_splare.topics import get_topics
    from pyserini_splare.train.dev_eval import evaluate_model

    model = load_encoder(spec)
    topics = get_topics(str(cacm / "topics.cacm.txt"))
    return evaluate_model(model, topics, str(cacm / "cacm.tar.gz"), str(cacm / "qrels.cacm.txt"),
                          ["AP", "nDCG@10"], work)


def heldout_eval(spec: str, data: Path, work: Path) -> dict[str, float]:
    """MRR@10 (RR@10), R@10, nDCG@10 of the held-out titles searching all abstracts."""
    sys.path.insert(0, str(REPO))
    from pyserini_splare.encode import load_encoder
    from pyserini_splare.topics import get_topics
    from pyserini_splare.train.dev_eval import evaluate_model

    return evaluate_model(load_encoder(spec), get_topics(str(data / "heldout_queries.tsv")), str(data / "corpus"),
                          str(data / "heldout_qrels.txt"), ["RR@10", "R@10", "nDCG@10"], work)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoder", required=True, help="starting encoder spec (splade:DIR or splare:DIR)")
    p.add_argument("--cacm", default=os.path.join(os.environ.get("PYSERINI_SPLARE_DATA", "."), "cacm"),
                   help="folder holding cacm.tar.gz and CACM's topics and qrels (default: $PYSERINI_SPLARE_DATA/cacm)")
    p.add_argument("--work", required=True, help="work folder (created)")
    p.add_argument("--recipe", default="splade-tiny-cpu")
    p.add_argument("--max-steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--negatives", type=int, default=None)
    p.add_argument("--max-length", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--trained", default=None, help="skip training: evaluate this trained encoder spec against --encoder")
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more flags for train")
    a = p.parse_args()
    work, cacm = Path(a.work), Path(a.cacm)
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    if not (data / "train.jsonl").exists():
        sh("-m", "pyserini_splare.testing.cacm_pairs", str(cacm / "cacm.tar.gz"), str(data), "--overwrite")
        sh("-m", "pyserini_splare.index", "--backend", "bm25", "--input", str(data / "corpus"),
           "--index", str(data / "bm25"))
        sh("-m", "pyserini_splare.train.data", "--queries", str(data / "train_queries.tsv"), "--corpus",
           str(data / "corpus"), "--positives", str(data / "train_pairs.tsv"), "--index", str(data / "bm25"),
           "--negatives", "8", "--depth", "50", "--output", str(data / "train.jsonl"))
    out = work / "model"
    kind = a.encoder.split(":", 1)[0]
    seconds = None
    if a.trained is None:
        flags = ["--recipe", a.recipe, "--encoder", a.encoder, "--train-data", str(data / "train.jsonl"),
                 "--max-steps", str(a.max_steps), "--output", str(out), "--save-steps", str(a.max_steps + 1)]
        for name in ("batch_size", "negatives", "max_length", "lr"):
            if getattr(a, name) is not None:
                flags += ["--" + name.replace("_", "-"), str(getattr(a, name))]
        t0 = time.time()
        sh("-m", "pyserini_splare.train", *flags, *a.extra)
        seconds = round(time.time() - t0, 1)
        trained = f"{kind}:{out}"
    else:
        trained = a.trained
    # Held-out titles over all 1,578 abstracts, and CACM's 52 judged queries over its 3,204 documents:
    # both through the toolkit's encode -> exact index -> search -> eval.
    result = {"encoder": a.encoder, "trained": trained, "train_seconds": seconds}
    for name, spec in (("before", a.encoder), ("after", trained)):
        result[f"heldout_{name}"] = heldout_eval(spec, data, work / f"heldout-{name}")
        result[f"cacm52_{name}"] = cacm_eval(spec, cacm, work / f"cacm52-{name}")
    print(json.dumps(result))

if __name__ == "__main__":
    main()
