"""Two-step search against full-vector search on the same vectors: recall, effectiveness, ms/query.

    # real SPLADE-tiny vectors on CACM (encode first, see docs/getting-started.md), queries encoded once
    python scripts/bench_two_step.py --vectors vectors/cacm.splade-tiny --topics cacm --qrels cacm-anserini \\
        --encoder splade:$M --work /tmp/b2cacm --setting exact,topk:32,topk:8,100 --setting exact,mass:0.8,mass:0.8,1000
    # a synthetic SPLARE-shaped collection (pyserini_splare.testing.synth), queries already integer impacts
    python scripts/bench_two_step.py --vectors W50/vectors --query-vectors W50/queries.jsonl --quantized \\
        --work /tmp/b2w50 --setting exact,topk:100,topk:10,1000 --setting seismic,topk:100,topk:10,1000

A ``--setting`` is ``BACKEND,PRUNE_DOCS,PRUNE_QUERIES,N`` (``-`` for no pruning). For each the script
builds ``index --backend BACKEND --prune-docs PRUNE_DOCS --forward-store`` once (kept in ``--work``), and
measures, one query at a time on one thread (index load excluded), the first stage alone (pruned
documents and queries, N hits) and two-step search (the same, then the top N rescored with the full
vectors), against full search (the exact backend on the full vectors, 1000 hits):

* recall@10 and recall@1000 = |top-k ∩ full top-k| / |full top-k| (two-step returns N hits: with
  N < 1000 its recall@1000 is bounded by N/1000);
* with ``--qrels``: nDCG@10, AP (MAP) and R@1000 (ir_measures);
* wall and CPU milliseconds per query (``time.process_time``: on a loaded machine wall time grows with
  other jobs, CPU time much less), with the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the checkout's package, without an install


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def timed_search(searcher, queries, k):
    """One query at a time; returns ({qid: hits}, wall ms/q, CPU ms/q)."""
    out = {}
    w0, c0 = time.perf_counter(), time.process_time()
    for q, v in queries.items():
        out[q] = searcher.batch_search({q: v}, k=k, threads=1)[q]
    n = max(len(queries), 1)
    return out, 1000 * (time.perf_counter() - w0) / n, 1000 * (time.process_time() - c0) / n


def overlap(run, ref, k):
    num = den = 0
    for q, hits in ref.items():
        want = {d for d, _ in hits[:k]}
        got = {d for d, _ in run.get(q, [])[:k]}
        num += len(want & got)
        den += len(want)
    return num / den if den else float("nan")


def effectiveness(run, qrels_name, data_dir):
    if not qrels_name:
        return {}
    from pyserini_splare.eval.measures import evaluate

    return evaluate(qrels_name, {q: {d: s for d, s in h} for q, h in run.items()}, ["nDCG@10", "AP", "R@1000"],
                    data_dir=data_dir)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--vectors", required=True, help="the full vectors directory")
    p.add_argument("--work", required=True, help="folder for the indexes (reused) and results.json")
    p.add_argument("--query-vectors", help="JSONL query vectors")
    p.add_argument("--quantized", action="store_true", help="the --query-vectors weights are integer impacts")
    p.add_argument("--topics", help="topics to encode with --encoder (and to restrict --query-vectors to)")
    p.add_argument("--encoder", help="encode --topics with this encoder (written to WORK/queries.jsonl once)")
    p.add_argument("--qrels", help="qrels name or file: adds nDCG@10, AP, R@1000")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--setting", action="append", required=True, metavar="BACKEND,PRUNE_DOCS,PRUNE_QUERIES,N")
    p.add_argument("--label", default="")
    args = p.parse_args(argv)

    from pyserini_splare.backends import get_backend
    from pyserini_splare.formats.sparse import parse_pruning
    from pyserini_splare.index.backends import build_index
    from pyserini_splare.index.two_step import build_two_step
    from pyserini_splare.search.queries import read_query_file
    from pyserini_splare.search.registry import open_searcher
    from pyserini_splare.search.two_step import TwoStepSearcher
    from pyserini_splare.topics import get_topics

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    topics = get_topics(args.topics, args.data_dir) if args.topics else None
    full_index = work / "full.exact"
    if not full_index.exists():
        build_index("exact", [args.vectors], full_index)
    qfile = args.query_vectors
    if args.encoder:
        qfile = work / "queries.jsonl"
        if not qfile.exists():
            from pyserini_splare.formats.index_meta import read_index_meta
            from pyserini_splare.search.queries import encode_topics

            vecs = encode_topics(args.encoder, topics, get_backend("exact"), read_index_meta(full_index))
            qfile.write_text("".join(json.dumps({"id": q, "vector": v}) + "\n" for q, v in vecs.items()))
    queries = read_query_file(str(qfile), topics, quantized=args.quantized)
    rows = []
    print(f"load before full search: {loadavg()}", file=sys.stderr)
    with open_searcher(full_index) as full:
        ref, wall, cpu = timed_search(full, queries, 1000)
    rows.append(dict(method="full (exact, full vectors)", wall_ms=wall, cpu_ms=cpu, r10=1.0, r1000=1.0,
                     load=loadavg(), **effectiveness(ref, args.qrels, args.data_dir)))
    for setting in args.setting:
        backend, pd, pq, n = setting.split(",")
        n = int(n)
        pd = None if pd == "-" else pd
        topk, mass = parse_pruning(pq) if pq != "-" else (0, None)
        index = work / f"{backend}.{pd or 'full'}".replace(":", "")
        if not index.exists():
            t0 = time.time()
            build_two_step(backend, [args.vectors], str(index), prune_docs=pd, forward_store=True)
            print(f"built {index} in {time.time() - t0:.1f} s", file=sys.stderr)
        with TwoStepSearcher(open_searcher(index), n, topk=topk, mass=mass) as two:
            first_q = two.first_stage_queries(queries)
            first, fw, fc = timed_search(two.first, first_q, n)
            rows.append(dict(method=f"first stage only: {backend}, docs {pd or 'full'}, queries {pq}, {n} hits",
                             wall_ms=fw, cpu_ms=fc, r10=overlap(first, ref, 10), r1000=overlap(first, ref, 1000),
                             load=loadavg(), **effectiveness(first, args.qrels, args.data_dir)))
            run, tw, tc = timed_search(two, queries, n)
            rows.append(dict(method=f"two-step: {backend}, docs {pd or 'full'}, queries {pq}, rescore {n}",
                             wall_ms=tw, cpu_ms=tc, r10=overlap(run, ref, 10), r1000=overlap(run, ref, 1000),
                             load=loadavg(), **effectiveness(run, args.qrels, args.data_dir)))
    (work / "results.json").write_text(json.dumps(rows, indent=1))
    keys = [k for k in ("nDCG@10", "AP", "R@1000") if k in rows[0]]
    print("| method | R@10 vs full | R@1000 vs full | " + "".join(k + " | " for k in keys) + "wall ms/q | CPU ms/q | load |")
    print("|---|---|---|" + "---|" * len(keys) + "---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['r10']:.4f} | {r['r1000']:.4f} | " + "".join(f"{r[k]:.4f} | " for k in keys)
              + f"{r['wall_ms']:.2f} | {r['cpu_ms']:.2f} | {r['load']} |")


if __name__ == "__main__":
    main()
