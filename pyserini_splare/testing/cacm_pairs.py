"""CACM as title -> abstract pairs, for training and evaluating on real text offline.

CACM's HTML pages (Anserini's ``cacm.tar.gz``) hold, in blank-line separated blocks: the title, the
abstract (about 1,500 of the 3,204 documents have one), then ``CACM <month>, <year>``, authors, etc.
``python -m pyserini_splare.testing.cacm_pairs CACM_TARBALL OUT`` writes, into the folder ``OUT``:

* ``corpus/abstracts.jsonl`` — ``{"id": docid, "contents": abstract}`` for every document with an
  abstract (the collection searched: JsonCollection for BM25, the encoder's input otherwise);
* ``train_queries.tsv`` / ``heldout_queries.tsv`` — ``docid<TAB>title`` (a query's id is its document's);
* ``train_pairs.tsv`` / ``heldout_pairs.tsv`` — ``docid docid`` (each title's positive is its own abstract);
* ``heldout_qrels.txt`` — TREC qrels of the held-out pairs (for ir_measures' RR@10).

A fraction ``--holdout`` of the documents (default a fifth) goes to the held-out side, chosen by a
seeded shuffle. The worked training example of docs/training.md starts here:

    python -m pyserini_splare.testing.cacm_pairs $PYSERINI_SPLARE_DATA/cacm/cacm.tar.gz cacm
    python -m pyserini_splare.index --backend bm25 --input cacm/corpus --index cacm/bm25
"""

from __future__ import annotations

import html
import json
import random
import re
import sys
import tarfile
from pathlib import Path

from .._argtypes import ArgumentParser, float_range
from .._errors import UsageError, cli_main, run
from .._outputs import atomic_dir, check_output_dir

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


def write_split(tarball: str | Path, out: str | Path, holdout: float = 0.2, seed: int = 0,
                overwrite: bool = False) -> dict[str, int]:
    """Write the files listed in the module docstring into the folder ``out`` (atomically: all or nothing);
    returns the number of documents with an abstract and of train and held-out pairs."""
    pairs = title_abstract_pairs(tarball)
    ids = sorted(pairs)
    rng = random.Random(seed)
    shuffled = ids[:]
    rng.shuffle(shuffled)
    n_held = int(round(len(ids) * holdout))
    held = set(shuffled[:n_held])
    with atomic_dir(out, overwrite=overwrite) as tmp:
        (tmp / "corpus").mkdir()
        with open(tmp / "corpus" / "abstracts.jsonl", "w", encoding="utf-8") as f:
            for d in ids:
                f.write(json.dumps({"id": d, "contents": pairs[d][1]}) + "\n")
        for name, part in (("train", [d for d in ids if d not in held]), ("heldout", [d for d in ids if d in held])):
            with open(tmp / f"{name}_queries.tsv", "w", encoding="utf-8") as f:
                f.writelines(f"{d}\t{pairs[d][0]}\n" for d in part)
            with open(tmp / f"{name}_pairs.tsv", "w", encoding="utf-8") as f:
                f.writelines(f"{d}\t{d}\n" for d in part)
        with open(tmp / "heldout_qrels.txt", "w", encoding="utf-8") as f:
            f.writelines(f"{d} 0 {d} 1\n" for d in sorted(held))
    return {"documents": len(ids), "train": len(ids) - n_held, "heldout": n_held}


@cli_main
def main(argv=None) -> int:
    p = ArgumentParser(prog="python -m pyserini_splare.testing.cacm_pairs",
                       description=__doc__)
    p.add_argument("tarball", help="Anserini's cacm.tar.gz (e.g. $PYSERINI_SPLARE_DATA/cacm/cacm.tar.gz)")
    p.add_argument("out", help="folder to write (refused if it exists, unless --overwrite)")
    p.add_argument("--holdout", type=float_range(0, 1, high_open=True), default=0.2,
                   help="fraction of the pairs held out (default 0.2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the held-out shuffle")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    a = p.parse_args(argv)
    if not Path(a.tarball).is_file():
        raise UsageError(f"{a.tarball} not found (Anserini's cacm.tar.gz)")
    check_output_dir(a.out, overwrite=a.overwrite)
    counts = write_split(a.tarball, a.out, a.holdout, a.seed, overwrite=a.overwrite)
    print(f"wrote {a.out}: {counts['documents']} documents with an abstract, {counts['train']} train pairs, "
          f"{counts['heldout']} held out", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run(main)
