"""Which sparse backend, with which settings, for a collection of a given size: the recommendation of
docs/benchmarks.md ("Search backends: one benchmark") as code, so that ``index`` can say so when a
build is far from it.

:func:`recommend` gives the recommendation for a collection size; :func:`advice` compares a finished
build (its index metadata, as every builder returns it) with it and returns notes to print (empty
when the build is close to the recommendation). Neither changes anything: a build the notes
disagree with may have reasons (Lucene for exact scores on little memory, or for Pyserini's
searchers), so they are advice, printed once after the build.

Where the numbers come from (scripts/bench_search.py on this project's 2-core machines; the
thresholds below are rounded from those measurements, see docs/benchmarks.md):

* exact brute force costs a query the sum of its posting lists: ~0.5 CPU ms at 20k-50k pooled
  SPLARE-shaped documents, ~1.4-1.7 ms at 100k, 14 ms at 1M (linear in N);
* Seismic at defaults costs ~0.6-1.6 ms from 20k to 1M, at recall@10 >= 0.998 on synthetic and
  real (SPLADE-tiny) vectors, but its unpruned index takes ~64-95 KB per pooled SPLARE document
  (6.4 GB at 100k) and its search process ~2x the index; ``n_postings="auto"`` cuts that 3-12x with
  recall@10 >= 0.998 on synthetic and CACM vectors, 0.93 on the docstrings corpus (check on yours);
* Lucene impact search is exact and its index small and on disk, but a query costs ~7-11 CPU ms at
  3k-50k documents with this toolkit's searcher (k = 10..1000; 2-3x more through Anserini directly),
  several times exact or Seismic at those sizes.
"""

from __future__ import annotations

from typing import Any, Mapping

# Below this many documents exact search is as fast as Seismic (and exact, and small).
EXACT_UP_TO = 50_000
# From here on exact search costs more than Seismic by a margin that grows with N (1.5x at 100k, 9x at 1M).
SEISMIC_FROM = 100_000
# Unpruned Seismic index bytes per document, measured on pooled SPLARE-shaped vectors (400 terms over
# 131,072 features): 64 KB/doc at 100k, 95 KB/doc at 50k. The search process holds about twice the index
# (4.8 GB index, 9.7 GB RSS at 50k; 6.3 GB, 12.7 GiB at 1M).
SEISMIC_UNPRUNED_BYTES_PER_DOC = 64_000
SEISMIC_RSS_PER_INDEX_BYTE = 2.0


def _ram_bytes() -> int | None:
    try:
        import os

        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def recommend(n_docs: int, ram_bytes: int | None = None) -> tuple[str, dict[str, Any], str]:
    """``(backend, build options, why)`` for a collection of ``n_docs`` documents."""
    if n_docs <= EXACT_UP_TO:
        return "exact", {}, (f"up to ~{EXACT_UP_TO:,} documents exact search is as fast as Seismic "
                             "(~0.5 CPU ms/query) and returns the exact top k")
    ram = ram_bytes if ram_bytes is not None else _ram_bytes()
    need = n_docs * SEISMIC_UNPRUNED_BYTES_PER_DOC * SEISMIC_RSS_PER_INDEX_BYTE
    if ram is not None and need > 0.8 * ram:
        return "seismic", {"n_postings": "auto"}, (
            f"at {n_docs:,} documents Seismic is the fastest backend, but unpruned it would need "
            f"~{need / 1e9:.0f} GB here ({ram / 1e9:.0f} GB of RAM); n_postings=auto keeps ~10% of the postings "
            "(check recall on your vectors: see docs/benchmarks.md)")
    if n_docs < SEISMIC_FROM:
        return "seismic", {}, (f"between {EXACT_UP_TO:,} and {SEISMIC_FROM:,} documents exact and Seismic cost "
                               "about the same per query; Seismic's defaults keep recall@10 >= 0.998")
    return "seismic", {}, (f"at {n_docs:,} documents Seismic at its defaults answers a query 1.5-10x faster than "
                           "exact and several times faster than Lucene, at recall@10 >= 0.998")


def _documents(meta: Mapping[str, Any]) -> int | None:
    n = (meta.get("build") or {}).get("documents")
    if n is None:
        n = ((meta.get("vectors") or {}).get("stats") or {}).get("documents")
    return int(n) if n is not None else None


def advice(meta: Mapping[str, Any], ram_bytes: int | None = None) -> list[str]:
    """Notes (one line each) on a finished sparse index build, given its metadata; [] when its backend
    and settings are what :func:`recommend` gives for its size, or when it is not a sparse index."""
    backend = meta.get("backend")
    if backend not in ("exact", "seismic", "lucene"):
        return []
    n = _documents(meta)
    if not n:
        return []
    notes = []
    build = meta.get("build") or {}
    if backend == "lucene" and build.get("method") == "anserini":
        notes.append("this Lucene index was built by Anserini's IndexCollection, whose cost grows with the "
                     "quantization scale; the default method (termfreq) builds the same index in a fraction "
                     "of the time")
    rec, opts, why = recommend(n, ram_bytes)
    if rec == backend:
        if backend == "seismic" and opts.get("n_postings") == "auto":
            used = (meta.get("seismic_build") or {}).get("n_postings")
            size_hint = n * SEISMIC_UNPRUNED_BYTES_PER_DOC
            if used not in (None, "auto") and isinstance(used, (int, float)) and used > 1000:
                notes.append(f"{why}; this index was built with n_postings={used} (~{size_hint / 1e9:.0f} GB "
                             "index for pooled SPLARE-shaped vectors)")
        return notes
    if backend == "lucene":
        notes.append(f"recommended for {n:,} documents: {rec}{_opts(opts)} ({why}); Lucene is exact and "
                     "small on disk but pays a fixed per-query cost in the JVM, several times exact or Seismic "
                     "(docs/benchmarks.md)")
    elif backend == "exact" and n > EXACT_UP_TO:
        notes.append(f"recommended for {n:,} documents: {rec}{_opts(opts)} ({why}); exact search grows "
                     "linearly with the collection (~14 ms/query at 1M)")
    elif backend == "seismic" and rec == "exact":
        notes.append(f"recommended for {n:,} documents: exact ({why}); Seismic is approximate and its "
                     "index here is larger")
    return notes


def _opts(opts: Mapping[str, Any]) -> str:
    return "" if not opts else " with " + ", ".join(f"{k}={v}" for k, v in opts.items())
