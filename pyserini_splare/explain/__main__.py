"""python -m pyserini_splare.explain: the top features of a query, a document or a stored vector."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .._argtypes import ArgumentParser, positive_int
from .._errors import UsageError, cli_main, run

EPILOG = """\
Prints the strongest features of one representation with a bar, the weight, and (for SAE latents) the
feature's description from a labels file: Neuronpedia's explanation export, a JSON list or JSONL of
{"index": "123", "description": "...", ...} objects (see docs/explain.md). Features without a
description show "(no label)". SPLADE/MILCO features are vocabulary terms and need no labels.

examples:
  # encode a query with SPLARE and label its latents
  python -m pyserini_splare.explain --encoder splare:/models/splare-7b --labels llama-scope-l26r.json \\
      --query "effects of sanctions on the Iranian economy" --top 10
  # a document
  python -m pyserini_splare.explain --encoder splade:/models/splade-v3 --doc "The cat sat on the mat."
  # a stored vector, no model needed (a vectors directory or a JSONL file of {"id", "vector"})
  python -m pyserini_splare.explain --vector-file vectors/splare --id doc123 --labels labels.jsonl
"""


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m pyserini_splare.explain", epilog=EPILOG,
                       description="Explain a sparse representation as a bag of labelled concepts.")
    src = p.add_argument_group("what to explain (one of)")
    src.add_argument("--query", help="query text to encode with --encoder")
    src.add_argument("--doc", help="document text to encode with --encoder")
    src.add_argument("--vector-file", metavar="PATH",
                     help="stored vectors: a vectors directory or a JSONL file of {\"id\", \"vector\"} lines (with --id)")
    p.add_argument("--id", help="--vector-file: the id of the vector to explain")
    p.add_argument("--encoder", metavar="SPEC", help="sparse encoder spec (splare:..., splade:..., milco:...)")
    p.add_argument("--labels", metavar="FILE", help="feature descriptions (Neuronpedia explanation export, JSON or JSONL)")
    p.add_argument("--layer", default=None, help="--labels: keep the entries of this Neuronpedia layer/SAE id")
    p.add_argument("--top", type=positive_int, default=10, help="features to show (default 10)")
    p.add_argument("--json", action="store_true", help="print one JSON object per feature instead of a table")
    p.add_argument("--device", default="cpu", help="--encoder: torch device")
    p.add_argument("--max-length", type=int, default=None,
                   help="--encoder: max tokens of the explained text (default: the model's own length for its side)")
    return p


def _stored_vector(path: str, vid: str):
    """``({term: weight}, space or None)`` for ``vid`` in a vectors directory or a JSONL file."""
    from ..vectors import iter_jsonl_vectors, iter_vectors, read_meta

    p = Path(path)
    if not p.exists():
        raise UsageError(f"vector file {p} does not exist")
    meta = None
    if p.is_dir():
        meta = read_meta(p)
        found = next((v for d, v in iter_vectors(p) if d == vid), None)
    else:
        if (p.parent / "meta.json").is_file() and p.name.startswith("part-"):
            meta = read_meta(p.parent)
        found = next((v for d, v, _ in iter_jsonl_vectors(p) if d == vid), None)
    if found is None:
        raise UsageError(f"no vector with id {vid!r} in {p}")
    if meta is not None:  # stored weights are integers round(w * scale): show them on the encoder's scale
        found = {t: w / meta.quant_scale for t, w in found.items()}
        return found, meta.space
    return found, None


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    sources = [s for s in ("query", "doc", "vector_file") if getattr(args, s) is not None]
    if len(sources) != 1:
        raise UsageError("give exactly one of --query, --doc, --vector-file")
    from .concepts import explain_vector, format_rows, load_labels

    labels = load_labels(args.labels, args.layer) if args.labels else None
    if args.vector_file:
        if not args.id:
            raise UsageError("--vector-file needs --id")
        if args.encoder:
            raise UsageError("--vector-file explains a stored vector: drop --encoder")
        vector, space = _stored_vector(args.vector_file, args.id)
    else:
        if not args.encoder:
            raise UsageError("--query/--doc need --encoder to encode the text")
        from ..encode import load_encoder
        from ..encode.base import SparseEncoder

        kind = "query" if args.query is not None else "doc"
        # --max-length overrides the side being explained only; the other keeps the model's own length.
        encoder = load_encoder(args.encoder, device=args.device, **{f"max_length_{kind}": args.max_length})
        if not isinstance(encoder, SparseEncoder):
            raise UsageError(f"{args.encoder} is a dense encoder: its dimensions are not concepts to explain")
        vector = encoder.encode([args.query if args.query is not None else args.doc], kind)[0]
        space = encoder.space
    rows = explain_vector(vector, space, labels, args.top)
    if args.json:
        for r in rows:
            print(json.dumps({"rank": r.rank, "feature": r.feature, "term": r.term, "weight": r.weight,
                              "label": r.label}, ensure_ascii=False))
    else:
        print(format_rows(rows, show_labels=labels is not None))
    return 0


if __name__ == "__main__":
    run(main)
