"""Lucene search: hits read one by one through JNI (before) vs all hits of a query in one string (after).

    python scripts/bench_lucene_hits.py --index IDX --queries QUERIES.jsonl [--ks 10,100,1000] [--reps 2]

Both in one process on the same index and the same integer queries (one at a time, one thread),
after a warm-up: *before* is what ``ImpactSearcher`` did until this change and what Pyserini's
``LuceneImpactSearcher`` does -- Anserini's ``SimpleImpactSearcher.search(Map, k)`` (which loads every
hit's stored document), then ``docid`` and ``score`` read from each returned object (one JNI call
each); *after* is :class:`pyserini_splare.search.lucene.ImpactSearcher`. Prints wall and process CPU
ms per query (CPU includes the JVM's threads) and checks that both return the same hits. The load
average is printed with each line: on a shared machine read the CPU column.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--index", required=True)
    p.add_argument("--queries", required=True, help="query vectors JSONL with integer weights")
    p.add_argument("--ks", default="10,100,1000")
    p.add_argument("--reps", type=int, default=2, help="timed passes over the queries (the best is kept)")
    a = p.parse_args(argv)
    from pyserini_splare._java import jclass
    from pyserini_splare.formats.query_vectors import read_query_vectors
    from pyserini_splare.search._base import QuantizedQuery
    from pyserini_splare.search.lucene import ImpactSearcher

    qs = {q: {t: int(w) for t, w in v.items()} for q, v in read_query_vectors(a.queries).items()}
    ans = jclass("io.anserini.search.SimpleImpactSearcher")(a.index)
    HashMap, Integer = jclass("java.util.HashMap"), jclass("java.lang.Integer")

    def before(q, k):
        m = HashMap()
        for t, w in q.items():
            m.put(t, Integer(w))
        return [(h.docid, float(round(h.score))) for h in ans.search(m, k)]

    ours = ImpactSearcher(a.index)

    def after(q, k):
        return ours.batch_search({"q": QuantizedQuery(q)}, k, 1)["q"]

    print(f"# {a.index}: {ours.num_docs:,} documents, {len(qs)} queries, one at a time, 1 thread")
    print("| k | before: wall ms/q | before: CPU ms/q | after: wall ms/q | after: CPU ms/q | CPU speed-up | load |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for k in (int(x) for x in a.ks.split(",")):
        res = {}
        for name, fn in (("before", before), ("after", after)):
            for q in list(qs.values())[:10]:
                fn(q, k)  # warm-up
            best = None
            for _ in range(a.reps):
                t0, c0 = time.perf_counter(), time.process_time()
                hits = {qid: fn(q, k) for qid, q in qs.items()}
                w, c = (time.perf_counter() - t0) / len(qs) * 1000, (time.process_time() - c0) / len(qs) * 1000
                best = (w, c) if best is None or c < best[1] else best
            res[name] = (best, hits)
        same = res["before"][1] == res["after"][1]
        (bw, bc), (aw, ac) = res["before"][0], res["after"][0]
        load = Path("/proc/loadavg").read_text().split()[0]
        print(f"| {k} | {bw:.2f} | {bc:.2f} | {aw:.2f} | {ac:.2f} | x{bc / ac:.1f} | {load} |"
              + ("" if same else " (hits DIFFER)"), flush=True)
    ours.close()
    ans.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
