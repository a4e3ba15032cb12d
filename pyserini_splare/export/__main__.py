"""python -m pyserini_splare.export: write an encoder as ONNX for CPU encoding without torch."""

from __future__ import annotations

import argparse
import sys

from .._errors import cli_main, run

EPILOG = """\
The output folder is an encoder spec of its own, onnx:OUTPUT, accepted wherever KIND:PATH is:
queries (search --encoder onnx:OUT) and documents (encode --encoder onnx:OUT) are encoded by onnxruntime
on the CPU, without importing torch, into the same feature space as the source encoder (an index built
with one is searched with the other). It holds trunk.onnx (dynamic batch and length), head.onnx, the
tokenizer and onnx_encoder.json; pooling runs in numpy, as the torch pooling does (docs/models.md, "ONNX").
An OpenSearch inference-free model exports its document model; its queries stay the idf.json lookup (copied
into OUTPUT): onnx:OUTPUT encodes queries by the table without opening a graph, documents by the graphs.

examples:
  # SPLADE-tiny (or naver/splade-v3) for CPU queries
  python -m pyserini_splare.export --encoder splade:/path/to/splade-tiny --format onnx --output onnx/splade-tiny
  python -m pyserini_splare.search --index indexes/cacm.splade-tiny.lucene --topics cacm \\
      --encoder onnx:onnx/splade-tiny --output runs/run.cacm.onnx.txt
  # int8 weights (onnxruntime dynamic quantization): smaller and faster, rankings change slightly
  python -m pyserini_splare.export --encoder bge-m3:/path/to/bge-m3 --format onnx --quantize int8 \\
      --output onnx/bge-m3.int8
  # OpenSearch inference-free: documents on ONNX, queries by its idf.json (no model at query time)
  python -m pyserini_splare.export --encoder opensearch:/path/to/os-multi --format onnx --output onnx/os-multi

Exportable kinds: splade, splade-llm, splare, bge-m3, milco (the reference layout, not with
--trust-remote-code), opensearch (documents; queries by its idf.json). Not: qwen3-embed (dense).
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pyserini_splare.export", description=__doc__.splitlines()[0],
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoder", required=True, metavar="SPEC",
                   help="the encoder to export: KIND:PATH or a model folder")
    p.add_argument("--format", required=True, choices=["onnx"], help="export format (onnx)")
    p.add_argument("--output", required=True, help="output folder (built in OUTPUT.partial, renamed when complete)")
    p.add_argument("--quantize", choices=["int8"], default=None, help="int8 dynamic quantization of both graphs")
    p.add_argument("--max-length-query", type=int, default=None, help="query truncation recorded in the export "
                                                                      "(default: the model's own)")
    p.add_argument("--max-length-doc", type=int, default=None, help="document truncation (default: the model's own)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--trust-remote-code", action="store_true", help="run the checkpoint's own code when loading it")
    return p


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    from .onnx_export import export_onnx

    cfg = export_onnx(args.encoder, args.output, quantize=args.quantize, overwrite=args.overwrite,
                      max_length_query=args.max_length_query, max_length_doc=args.max_length_doc,
                      trust_remote_code=args.trust_remote_code, log=lambda m: print(m, file=sys.stderr))
    print(f"wrote {args.output}: encoder spec onnx:{args.output} (max weight difference to torch "
          f"{cfg['check_max_abs_diff']:.2e})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run(main)
