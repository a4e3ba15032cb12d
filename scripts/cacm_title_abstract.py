#!/usr/bin/env python
"""CACM as title -> abstract pairs, for training and evaluating on real text offline.

CACM's HTML pages (Anserini's ``cacm.tar.gz``) hold, in blank-line separated blocks: the title, the
abstract (about 1,500 of the 3,204 documents have one), then ``CACM <month>, <year>``, authors, etc.
This script writes, into ``OUT``:

* ``corpus/abstracts.jsonl`` — ``{"id": docid, "contents": abstract}`` for every document with an
  abstract (the collection searched: JsonCollection for BM25, the encoder's input otherwise);
* ``train_queries.tsv`` / ``heldout_queries.tsv`` — ``docid<TAB>title`` (a query's id is its document's);
* ``train_pairs.tsv`` / ``heldout_pairs.tsv`` — ``docid docid`` (each title's positive is its own abstract);
* ``heldout_qrels.txt`` — TREC qrels of the held-out pairs (for ir_measures' RR@10).

One document in ``--holdout`` (default a fifth) goes to the held-out side, chosen by a seeded shuffle.

    python scripts/cacm_title_abstract.py ../shared/data/cacm/cacm.tar.gz OUT
"""

from __future__ import annotations

import argparse
import html
import json
import random
import re
import tarfile
from pathlib import Path

_TAG = re.compile(r"<[^>]*>")


def title_abstract_pairs(tarball: str | Path) -> dict[str, tuple[str, str]]:
    """{docid: (title, abstract)} for the documents that have an abstract."""
    out = {}
    with tarfile.open(tarball, "r:*") as tf:
        for m in tf:
            if not m.isfile() or not m.name.endswith(".html"):
                continue
            raw = html.unescape(_TAG.sub("", tf.extractfile(m).read().decode("utf-8")))
            blocks = [" ".join(b.split()) for b in re.split(r"\n\s*\n", raw.strip()) if b.strip()]
            if len(blocks) < 3 or blocks[1].startswith("CACM "):
                continue  # no abstract: the second block is already the "CACM <month>, <year>" line
            out[Path(m.name).stem] = (blocks[0], blocks[1])
    return out


def write_split(tarball: str | Path, out: str | Path, holdout: float = 0.2, seed: int = 0) -> dict[str, int]:
    pairs = title_abstract_pairs(tarball)
    out = Path(out)
    (out / "corpus").mkdir(parents=True, exist_ok=True)
    ids = sorted(pairs)
    with open(out / "corpus" / "abstracts.jsonl", "w", encoding="utf-8") as f:
        for d in ids:
            f.write(json.dumps({"id": d, "contents": pairs[d][1]}) + "\n")
    rng = random.Random(seed)
    shuffled = ids[:]
    rng.shuffle(shuffled)
    n_held = int(round(len(ids) * holdout))
    held = set(shuffled[:n_held])
    for name, part in (("train", [d for d in ids if d not in held]), ("heldout", [d for d in ids if d in held])):
        with open(out / f"{name}_queries.tsv", "w", encoding="utf-8") as f:
            f.writelines(f"{d}\t{pairs[d][0]}\n" for d in part)
        with open(out / f"{name}_pairs.tsv", "w", encoding="utf-8") as f:
            f.writelines(f"{d}\t{d}\n" for d in part)
    with open(out / "heldout_qrels.txt", "w", encoding="utf-8") as f:
        f.writelines(f"{d} 0 {d} 1\n" for d in sorted(held))
    return {"documents": len(ids), "train": len(ids) - n_held, "heldout": n_held}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("tarball")
    p.add_argument("out")
    p.add_argument("--holdout", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    print(write_split(a.tarball, a.out, a.holdout, a.seed))


if __name__ == "__main__":
    main()
