"""python -m pyserini_splare.search: search an index with topics, write a TREC run."""

from __future__ import annotations

import argparse
import json
import sys

from .._cli import UsageError, cli_main, progress, run

EPILOG = """\
The backend comes from the index's metadata: a Lucene impact, Seismic or exact index is searched with
sparse query vectors (from --query-vectors, or encoded on the fly with --encoder), a BM25 index with
the topics' text, a faiss index with dense query embeddings.

examples:
  # BM25 on CACM (Anserini defaults k1=0.9 b=0.4)
  python -m pyserini_splare.search --index indexes/cacm.bm25 --topics cacm --output runs/cacm.bm25.txt
  # pre-encoded queries, one {"id": qid, "vector": {term: weight}} per line
  python -m pyserini_splare.search --index indexes/splare.lucene --topics neuclir \\
      --query-vectors queries.splare.jsonl --output runs/run1.txt --hits 1000 --threads 8
  # Seismic (approximate): the query's 20 heaviest terms, skip blocks below 0.9 x the k-th score
  python -m pyserini_splare.search --index indexes/splare.seismic --query-vectors queries.splare.jsonl \
      --output runs/run1.seismic.txt --query-cut 20 --heap-factor 0.9 --threads 8
  # the topics registry
  python -m pyserini_splare.search --list-topics

`--topics neuclir` is the WSDM Cup 2026 dev set (41 English queries over NeuCLIR1). Topic and qrels files
are looked up in $PYSERINI_SPLARE_DATA (or --data-dir), else ~/.cache/pyserini_splare/topics-and-qrels.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pyserini_splare.search", description="Search an index and write a TREC run file.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--index", help="index directory built by `python -m pyserini_splare.index`")
    p.add_argument("--topics", help="topics name (see --list-topics; `neuclir` = WSDM Cup 2026 dev) or a file "
                                    "(TSV qid<TAB>text, TREC SGML, Anserini CACM format)")
    p.add_argument("--output", help="TREC run file to write (atomically)")
    p.add_argument("--query-vectors", metavar="JSONL",
                   help="pre-encoded queries: one {\"id\": qid, \"vector\": {term: weight}} per line; integer weights "
                        "are used as is, real weights are quantized with the index's scale")
    p.add_argument("--encoder", metavar="SPEC", help="encode the topics on the fly (e.g. splade:/path/to/model)")
    p.add_argument("--hits", type=int, default=1000, help="hits per query (default 1000)")
    p.add_argument("--threads", type=int, default=1, help="search threads (default 1)")
    p.add_argument("--batch-size", type=int, default=64, help="queries per batch (default 64)")
    p.add_argument("--run-tag", default=None, help="run tag, the 6th column (default: the index folder's name)")
    p.add_argument("--topk", type=int, default=0,
                   help="keep the k largest query weights (Top-K pooling; the paper's pooled setting is 40); 0 keeps all")
    p.add_argument("--device", default="cpu", help="--encoder: torch device (cpu, cuda:0)")
    p.add_argument("--max-length", type=int, default=None, help="--encoder: max query tokens")
    p.add_argument("--searcher-options", metavar="JSON", default=None,
                   help="backend-specific searcher options as a JSON object (see docs/search.md)")
    p.add_argument("--query-cut", type=int, default=None,
                   help="seismic: query terms (largest weights) that select posting lists (default 20)")
    p.add_argument("--heap-factor", type=float, default=None,
                   help="seismic: skip a block whose summary score is below this x the k-th best score, in (0, 1] "
                        "(default 0.9; lower = more accurate, slower)")
    p.add_argument("--data-dir", default=None, help="folder with topics and qrels (default $PYSERINI_SPLARE_DATA)")
    p.add_argument("--java-heap", default=None, help="JVM heap for Lucene (default 4g or $PYSERINI_SPLARE_JAVA_HEAP)")
    p.add_argument("--list-topics", action="store_true", help="list the registered topics and qrels names and exit")
    return p


def _load_topics(args) -> dict[str, str] | None:
    if not args.topics:
        return None
    from ..topics import get_topics

    return get_topics(args.topics, args.data_dir)


def _sparse_queries(args, topics, searcher) -> dict:
    from ..vectors import SparseVector, read_query_vectors

    if args.query_vectors and args.encoder:
        raise UsageError("give either --query-vectors or --encoder, not both")
    if args.query_vectors:
        vecs = read_query_vectors(args.query_vectors)
        if topics is not None:
            missing = [q for q in topics if q not in vecs]
            if missing:
                raise UsageError(f"{len(missing)} of {len(topics)} topics have no vector in {args.query_vectors} "
                                 f"(first: {missing[0]!r})")
            vecs = {q: vecs[q] for q in topics}
    elif args.encoder:
        if topics is None:
            raise UsageError("--encoder needs --topics to encode")
        from ..encode import encode_queries  # the encoders' registry; imports torch lazily

        vecs = encode_queries(args.encoder, topics, index_meta=searcher.meta, device=args.device,
                              max_length=args.max_length, batch_size=args.batch_size)
    else:
        raise UsageError(f"a {searcher.backend} index is searched with query vectors: pass --query-vectors or --encoder")
    if args.topk > 0:
        pruned = {}
        for qid, v in vecs.items():
            terms = list(v)
            sv = SparseVector(list(range(len(terms))), [float(v[t]) for t in terms]).topk(args.topk)
            pruned[qid] = {terms[i]: v[terms[i]] for i in sv.ids}
        vecs = pruned
    return vecs


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.list_topics:
        from ..topics import list_registry

        print(list_registry())
        return 0
    for flag in ("index", "output"):
        if not getattr(args, flag):
            raise UsageError(f"--{flag} is required (see --help)")
    if args.hits <= 0:
        raise UsageError(f"--hits must be positive, got {args.hits}")
    if args.threads < 1 or args.batch_size < 1:
        raise UsageError("--threads and --batch-size must be >= 1")
    options = {}
    if args.searcher_options:
        try:
            options = json.loads(args.searcher_options)
        except json.JSONDecodeError as e:
            raise UsageError(f"--searcher-options is not valid JSON: {e}") from None
        if not isinstance(options, dict):
            raise UsageError("--searcher-options must be a JSON object")
    from pathlib import Path

    from ..index import read_index_meta
    from ..runs import write_run
    from ._base import QUERY_KINDS, open_searcher

    meta = read_index_meta(args.index)
    out_dir = Path(args.output).parent
    if str(out_dir) and not out_dir.is_dir():
        raise UsageError(f"output directory {out_dir} does not exist")
    topics = _load_topics(args)
    if args.java_heap and meta["backend"] in ("lucene", "bm25"):
        from .._java import start_jvm

        start_jvm(args.java_heap)
    for flag in ("query_cut", "heap_factor"):
        if getattr(args, flag) is not None:
            if meta["backend"] != "seismic":
                raise UsageError(f"--{flag.replace('_', '-')} applies to seismic indexes, not {meta['backend']}")
            options[flag] = getattr(args, flag)
    try:
        searcher = open_searcher(args.index, **options)
    except (TypeError, ValueError) as e:  # unknown or invalid --searcher-options for this backend
        raise UsageError(f"bad searcher options for a {meta['backend']} index: {e}") from None
    kind = QUERY_KINDS.get(meta["backend"], "sparse")
    if kind == "text":
        if topics is None:
            raise UsageError(f"a {meta['backend']} index is searched with text: pass --topics")
        if args.query_vectors:
            raise UsageError("--query-vectors cannot search a BM25 index")
        queries = topics
    elif kind == "dense":
        if topics is None:
            raise UsageError("a dense index is searched with encoded topics: pass --topics and --encoder")
        if not args.encoder:
            raise UsageError("a dense index needs --encoder (e.g. qwen3-embed:/path/to/Qwen3-Embedding)")
        from ..encode import encode_queries

        queries = encode_queries(args.encoder, topics, index_meta=meta, device=args.device,
                                 max_length=args.max_length, batch_size=args.batch_size)
    else:
        queries = _sparse_queries(args, topics, searcher)

    tag = args.run_tag or Path(args.index.rstrip("/")).name
    qids = list(queries)
    results = {}
    with progress(total=len(qids), desc=f"search {meta['backend']}", unit="q") as bar:
        for i in range(0, len(qids), args.batch_size):
            batch = {q: queries[q] for q in qids[i:i + args.batch_size]}
            results.update(searcher.batch_search(batch, k=args.hits, threads=args.threads))
            bar.update(len(batch))
    searcher.close()
    n = write_run(args.output, {q: dict(hits) for q, hits in results.items()}, tag, order=qids)
    print(f"wrote {n} lines for {len(qids)} queries to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run(main)
