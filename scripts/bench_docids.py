#!/usr/bin/env python
"""Docid table read: ``formats.docids.read_docids`` (memory-mapped) against a plain ``np.load`` copy.

Writes a table of ``--ids`` UUIDs (36 characters) once, then in this process opens it one way, looks up
``--lookups`` random result lists of 10 ids, and prints the open time, the lookup time and how the
process's resident memory grew, split into private pages (``RssAnon``: this process's alone) and
file-backed ones (``RssFile``: the page cache's, shared with every process that maps the file, e.g.
``serve --workers``, and reclaimable). Run each mode in a fresh process:

    python scripts/bench_docids.py --mode load --ids 2000000
    python scripts/bench_docids.py --mode mmap --ids 2000000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np


def rss_mb(field: str) -> float:
    status = Path("/proc/self/status").read_text()
    return int(status.split(field + ":")[1].split()[0]) / 1024


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=["load", "mmap"], required=True,
                   help="load: np.load (a private copy); mmap: read_docids (the package's reader)")
    p.add_argument("--ids", type=int, default=2_000_000)
    p.add_argument("--lookups", type=int, default=1000)
    p.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "bench_docids"))
    args = p.parse_args()
    from pyserini_splare.formats.docids import DOCIDS_FILE, read_docids, write_docids

    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    if not (d / DOCIDS_FILE).is_file() or len(read_docids(d)) != args.ids:
        write_docids(d, [str(uuid.UUID(int=i)) for i in range(args.ids)])
    anon0, file0 = rss_mb("RssAnon"), rss_mb("RssFile")
    t0 = time.perf_counter()
    ids = np.load(d / DOCIDS_FILE, allow_pickle=False) if args.mode == "load" else read_docids(d, args.ids)
    t1 = time.perf_counter()
    rng = np.random.default_rng(0)
    for _ in range(args.lookups):
        ids[rng.integers(0, len(ids), 10)].tolist()
    t2 = time.perf_counter()
    print(f"{args.mode}: {args.ids:,} ids ({(d / DOCIDS_FILE).stat().st_size / 2**20:.0f} MB file): open "
          f"{1000 * (t1 - t0):.1f} ms; {args.lookups} lookups of 10 ids {1000 * (t2 - t1):.1f} ms; "
          f"private +{rss_mb('RssAnon') - anon0:.0f} MB, file-backed +{rss_mb('RssFile') - file0:.0f} MB")


if __name__ == "__main__":
    main()
