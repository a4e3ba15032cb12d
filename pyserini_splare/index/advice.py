"""Which sparse backend, with which settings, for a collection of a given size: the recommendation of
docs/benchmarks.md ("Search backends") as code, so that ``index`` can say so when a build is far from it.

:func:`recommend` gives the recommendation; :func:`advice` compares a finished build with it and returns notes
to print once (a build may have reasons to differ). The thresholds are rounded from the measurements in
docs/benchmarks.md (exact's cost linear in N, Seismic's at k = 1000 and its memory rule, SINDI's, Lucene's).
"""

from __future__ import annotations

from typing import Any, Mapping

# Up to this many documents exact search is within ~1 CPU ms/query of Seismic at k = 10, as fast at
# k = 1000 (where Seismic's recall drops), exact, and ~10x smaller.
EXACT_UP_TO = 100_000
# Seismic's search process (VmHWM): RSS_PER_KEPT_TERM bytes per posting kept in its lists per term of
# the mean document, plus the process (`scripts/bench_search.py growth`: non-negative least
# squares over 13 builds; largest error 25 % from 50k documents on).
SEISMIC_RSS_PER_KEPT_TERM = 0.431
SEISMIC_RSS_FIXED = 169 * 2**20
# The shape the recommendation assumes when only a document count is known: pooled SPLARE (Top-400
# of 131,072 latents).
SPLARE_POOLED_TERMS = 400
SPLARE_LATENTS = 131_072
# Share of the machine's RAM a recommended index may take while searching.
RAM_SHARE = 0.8


def sindi_available() -> bool:
    """Whether the sindi backend's optional package (pyvsag) is installed (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("pyvsag") is not None


def _ram_bytes() -> int | None:
    try:
        import os

        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def seismic_rss(n_docs: int, lean: bool, terms_per_doc: float = SPLARE_POOLED_TERMS,
                n_lists: int = SPLARE_LATENTS) -> float:
    """Estimated bytes a Seismic search process holds for ``n_docs`` documents of ``terms_per_doc``
    terms over ``n_lists`` posting lists, built at the defaults or (``lean``) with n_postings=auto.
    Lists are taken as equally long, so for skewed real vectors the kept postings (and the estimate)
    are an upper bound."""
    from .seismic import DEFAULT_BUILD, auto_n_postings

    postings = n_docs * terms_per_doc
    n_post = auto_n_postings(int(postings), n_lists) if lean else DEFAULT_BUILD["n_postings"]
    kept = min(postings, n_post * n_lists)
    return SEISMIC_RSS_PER_KEPT_TERM * kept * terms_per_doc + SEISMIC_RSS_FIXED


def recommend(n_docs: int, ram_bytes: int | None = None, terms_per_doc: float = SPLARE_POOLED_TERMS,
              n_lists: int = SPLARE_LATENTS, sindi: bool | None = None) -> tuple[str, dict[str, Any], str]:
    """``(backend, build options, why)`` for a collection of ``n_docs`` documents of ``terms_per_doc``
    terms over ``n_lists`` features (default: pooled SPLARE); ``sindi``: whether the sindi backend may be
    recommended (default: whether pyvsag is installed)."""
    if n_docs <= EXACT_UP_TO:
        if sindi if sindi is not None else sindi_available():
            return "sindi", {}, (f"up to ~{EXACT_UP_TO:,} documents SINDI returns the exact top k at 2-4x less CPU "
                                 "than exact and Seismic (0.3 ms/query at top 10, 1.1 at top 1000, 50k-100k pooled "
                                 "SPLARE) with an index as small as exact's")
        return "exact", {}, (f"up to ~{EXACT_UP_TO:,} documents exact search is within ~1 CPU ms/query of "
                             "Seismic at top 10, as fast at top 1000, and returns the exact top k")
    ram = ram_bytes if ram_bytes is not None else _ram_bytes()
    full = seismic_rss(n_docs, False, terms_per_doc, n_lists)
    lean = seismic_rss(n_docs, True, terms_per_doc, n_lists)
    if ram is None or full <= RAM_SHARE * ram:
        return "seismic", {}, (f"at {n_docs:,} documents Seismic at its defaults answers top 10 several times "
                               "faster than exact and Lucene at recall@10 1.0 (check recall@1000 on your vectors)")
    if lean <= RAM_SHARE * ram:
        return "seismic", {"n_postings": "auto"}, (
            f"at {n_docs:,} documents Seismic is the fastest backend (1.1 CPU ms/query at 1M pooled SPLARE vs 14 "
            f"exact, 19 Lucene), but unpruned it would hold ~{full / 1e9:.0f} GB here ({ram / 1e9:.0f} GB of RAM); "
            f"n_postings=auto needs ~{lean / 1e9:.0f} GB (recall@1000 0.94 at 1M: check on your vectors)")
    return "lucene", {}, (f"at {n_docs:,} documents even Seismic's lean index would hold ~{lean / 1e9:.0f} GB "
                          f"while searching ({ram / 1e9:.0f} GB of RAM here); Lucene's index stays on disk "
                          "(~1 KB per pooled SPLARE document) and is exact; or shard the collection (search/group.py)")


def _documents(meta: Mapping[str, Any]) -> int | None:
    n = (meta.get("build") or {}).get("documents")
    if n is None:
        n = ((meta.get("vectors") or {}).get("stats") or {}).get("documents")
    return int(n) if n is not None else None


def advice(meta: Mapping[str, Any], ram_bytes: int | None = None, sindi: bool | None = None) -> list[str]:
    """Notes (one line each) on a finished sparse index build, given its metadata; [] when its backend
    and settings are what :func:`recommend` gives for its size, or when it is not a sparse index.
    An exact index where SINDI is recommended gets no note (both return the exact top k, and exact needs
    no optional package); nor does a SINDI index (measured only up to ~100k documents)."""
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
    shape = {}
    if build.get("postings") and build.get("distinct_terms"):  # the collection's own shape, not pooled SPLARE's
        shape = {"terms_per_doc": build["postings"] / n, "n_lists": int(build["distinct_terms"])}
    rec, opts, why = recommend(n, ram_bytes, sindi=sindi, **shape)
    if rec == backend:
        if backend == "seismic" and opts.get("n_postings") == "auto":
            from .seismic import auto_n_postings

            used = (meta.get("seismic_build") or {}).get("n_postings")
            size_hint = seismic_rss(n, False, **shape)
            # "auto" is recorded as the number it resolved to: a note only when the lists kept more
            auto = auto_n_postings(build["postings"], build["distinct_terms"]) if shape else 1000
            if used not in (None, "auto") and isinstance(used, (int, float)) and used > 1.5 * auto:
                notes.append(f"{why}; this index was built with n_postings={used} (unpruned: ~{size_hint / 1e9:.0f} GB "
                             "while searching)")
        return notes
    if backend == "lucene" and rec not in ("exact", "sindi"):
        # Below EXACT_UP_TO both are exact and a query costs milliseconds either way: Lucene is then a
        # fine choice (Pyserini's searchers, the getting-started guide's), not one to correct.
        notes.append(f"recommended for {n:,} documents: {rec}{_opts(opts)} ({why}); Lucene is exact and "
                     "small on disk but pays a fixed per-query cost in the JVM, several times exact or Seismic "
                     "(docs/benchmarks.md)")
    elif backend == "exact" and n > EXACT_UP_TO:
        notes.append(f"recommended for {n:,} documents: {rec}{_opts(opts)} ({why}); exact search grows "
                     "linearly with the collection (~14 ms/query at 1M)")
    elif backend == "seismic" and rec in ("exact", "sindi"):
        notes.append(f"recommended for {n:,} documents: {rec} ({why}); Seismic is approximate and its "
                     "index here is larger")
    elif backend == "seismic" and rec == "lucene":
        notes.append(f"recommended for {n:,} documents: lucene ({why})")
    return notes


def _opts(opts: Mapping[str, Any]) -> str:
    return "" if not opts else " with " + ", ".join(f"{k}={v}" for k, v in opts.items())
