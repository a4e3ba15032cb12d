"""Calibrated Seismic next to Seismic's defaults and the rank-safe backends, on the held-out queries.

    # 1. calibrate (records the choice in the index folder: use a copy, e.g. cp -al)
    python -m pyserini_splare.search --index W/index.seismic --query-vectors W/queries.int.jsonl \\
        --query-vectors-quantized --output W/run.cal.txt --hits 1000 --target-recall 0.99 --recall-at 1000 \\
        --calibration-reference W/index.exact
    # 2. compare, on the queries the calibration did not see
    python scripts/bench_calibration.py --seismic W/index.seismic --exact W/index.exact [--lucene W/index.lucene] \\
        --queries W/queries.int.jsonl --target-recall 0.99 --recall-at 1000

For each setting (Seismic at the registry's defaults, Seismic at the recorded calibration, exact, and
Lucene when given): the index is loaded once (not timed), searched once untimed (warm-up), then the
held-out queries are searched in one batch on one thread: wall q/s, CPU ms/query (the whole process's
CPU time, the JVM's threads included for Lucene) and recall@K against the exact backend. The held-out
queries are recomputed from the record's seed and sample size and checked against its hash.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's package

from pyserini_splare.formats.calibration import find_entry, read_calibration  # noqa: E402
from pyserini_splare.formats.query_vectors import read_query_vectors  # noqa: E402
from pyserini_splare.search.base import QuantizedQuery  # noqa: E402
from pyserini_splare.search.calibrate import _ids_sha, recall_at, split_queries  # noqa: E402
from pyserini_splare.search.registry import open_searcher  # noqa: E402


def timed(searcher, queries, k):
    searcher.batch_search(dict(list(queries.items())[:20]), k=k, threads=1)  # warm-up
    t, c = time.perf_counter(), time.process_time()
    got = searcher.batch_search(queries, k=k, threads=1)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    return got, len(queries) / wall, 1000 * cpu / len(queries)


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seismic", required=True)
    p.add_argument("--exact", required=True)
    p.add_argument("--lucene")
    p.add_argument("--queries", required=True)
    p.add_argument("--target-recall", type=float, required=True)
    p.add_argument("--recall-at", type=int, required=True)
    p.add_argument("--json", help="also write the rows here")
    a = p.parse_args()
    k = a.recall_at
    entry = find_entry(read_calibration(a.seismic), a.target_recall, k)
    if entry is None:
        raise SystemExit(f"no calibration for recall@{k} >= {a.target_recall} recorded in {a.seismic}")
    qs = {q: QuantizedQuery(v) for q, v in read_query_vectors(a.queries).items()}
    cal = entry["calibration"]
    sample, held = split_queries(list(qs), int(cal["queries"]), int(cal["seed"]))
    if _ids_sha(sample) != cal["query_ids_sha256"]:
        raise SystemExit("the recorded calibration sample is not this query file's (seed/size/hash differ)")
    held_q = {q: qs[q] for q in held}
    rows = []
    with open_searcher(a.exact) as ex:
        ref, qps, cpu = timed(ex, held_q, k)
        rows.append(("exact", {}, 1.0, qps, cpu, loadavg()))
    with open_searcher(a.seismic) as s:
        from pyserini_splare.backends import get_backend

        default = {o: v for o, v in get_backend("seismic").defaults("search").items() if o in entry["options"]}
        for label, opts in (("seismic defaults", default), ("seismic calibrated", entry["options"])):
            s.configure(**opts)
            got, qps, cpu = timed(s, held_q, k)
            rows.append((label, opts, recall_at(got, ref, k), qps, cpu, loadavg()))
    if a.lucene:
        with open_searcher(a.lucene) as lu:
            got, qps, cpu = timed(lu, held_q, k)
            rows.append(("lucene", {}, recall_at(got, ref, k), qps, cpu, loadavg()))
    print(f"{len(held)} held-out queries (calibrated on {len(sample)}), k={k}, one thread, one batch")
    print(f"| backend / setting | recall@{k} (held out) | q/s | CPU ms/q | load |")
    print("|---|---|---|---|---|")
    for label, opts, r, qps, cpu, load in rows:
        o = " ".join(f"{x}={v:g}" for x, v in opts.items())
        print(f"| {label}{' (' + o + ')' if o else ''} | {r:.4f} | {qps:.0f} | {cpu:.2f} | {load} |")
    if a.json:
        Path(a.json).write_text(json.dumps([dict(zip(("label", "options", "recall", "qps", "cpu_ms", "load"), r))
                                            for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
