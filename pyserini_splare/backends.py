"""The one declaration of every index backend and of each of its options (default, limits, help).

The ``index``/``search`` flags and ``--help`` (:func:`add_option_flags`), option validation
(:meth:`Backend.check_options`) and docs/backends.md's table (:func:`options_markdown`) all come from here.
Builders and searchers are named by the stages' own tables (``index.backends.BUILDERS``,
``search.registry.SEARCHERS``), so this registry sits below both. An option defaulting to ``None`` is
computed by the backend from the data (its help says how).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping

from ._errors import UsageError

QueryKind = Literal["sparse", "dense", "text"]
OptionKind = Literal["build", "search"]


def option(help: str, default: Any = None, *, type: type = str, flag: str | None = "",
           choices: tuple | None = None, min: float | None = None, max: float | None = None,
           min_open: bool = False, auto: bool = False, grid: tuple | None = None) -> Any:
    """A backend option.

    ``default`` its real default (``None``: computed by the backend, see ``help``); ``type`` int,
    float, str or bool; ``choices`` the allowed values; ``min``/``max`` inclusive limits
    (``min_open``: ``min`` itself excluded); ``auto``: the string "auto" is allowed too.
    ``flag`` its CLI flag ("" = ``--name-with-dashes``, None = reachable through the JSON options only);
    a bool option's flag sets it to ``not default``.
    ``grid``: a search option that ``search --target-recall`` calibrates, and the values it tries, ordered
    from the fastest (least accurate) to the slowest (most accurate) (pyserini_splare.search.calibrate).
    """
    return field(default=default, metadata=dict(help=help, type=type, flag=flag, choices=choices, min=min, max=max,
                                                min_open=min_open, auto=auto, grid=grid))


def option_flag(f: dataclasses.Field) -> str | None:
    """The CLI flag of an options-dataclass field (None: JSON options only)."""
    flag = f.metadata["flag"]
    if flag is None:
        return None
    return flag or "--" + f.name.replace("_", "-")


def limits(f: dataclasses.Field) -> str:
    """The allowed values of an option, in words (for help, errors and docs)."""
    m = f.metadata
    if m["choices"]:
        out = "one of " + ", ".join(map(str, m["choices"]))
    elif m["type"] is bool:
        out = "true or false"
    elif m["min"] is not None and m["max"] is not None:
        out = f"in {'(' if m['min_open'] else '['}{m['min']:g}, {m['max']:g}]"
    elif m["min"] is not None:
        out = f"{'>' if m['min_open'] else '>='} {m['min']:g}"
    else:
        out = ""
    if m["type"] is int:
        out = ("an integer " + out).strip()
    if m["auto"]:
        out += ' or "auto"'
    return out


def _check_value(f: dataclasses.Field, value: Any, where: str) -> Any:
    m = f.metadata
    kind = m["type"]
    if m["auto"] and value == "auto":
        return value
    ok = not isinstance(value, bool) if kind is not bool else isinstance(value, bool)
    if kind is int:
        ok = ok and isinstance(value, int)
    elif kind is float:
        ok = ok and isinstance(value, (int, float)) and math.isfinite(value)
    elif kind is str:
        ok = isinstance(value, str)
    if ok and m["choices"] and value not in m["choices"]:
        ok = False
    if ok and m["min"] is not None and (value < m["min"] or (m["min_open"] and value == m["min"])):
        ok = False
    if ok and m["max"] is not None and value > m["max"]:
        ok = False
    if not ok:
        raise UsageError(f"{where} {f.name} must be {limits(f) or kind.__name__}, got {value!r}")
    return float(value) if kind is float else value


@dataclass
class NoOptions:
    """A backend without options of this kind."""


def _quant_scale() -> Any:
    return option("quantize the float weights of a JsonVectorCollection folder without meta.json at this scale "
                  "(a vectors directory written by encode is already quantized; default: refuse float weights)",
                  type=float, min=0, min_open=True)


# ---------------------------------------------------------------------------------------------
# Build options
# ---------------------------------------------------------------------------------------------


@dataclass
class LuceneImpactBuild:
    optimize: bool = option("merge into one segment (slower build, faster search)", False, type=bool)
    validate: bool = option("check every term against the feature space (--no-validate skips it)", True,
                            type=bool, flag="--no-validate")
    method: str = option("termfreq (cost independent of the quantization scale) or anserini "
                         "(Anserini's IndexCollection, the reference)", "termfreq", flag="--impact-method",
                         choices=("termfreq", "anserini"))
    # Lucene's per-writer limit is 2047 MB.
    ram_buffer_mb: float | None = option("the Lucene writer's indexing buffer in MB, shared by its threads "
                                         "(default 256 per thread, at most half the JVM heap)", type=float,
                                         min=1, max=2047)
    quant_scale: float | None = _quant_scale()


@dataclass
class LuceneGroupBuild(LuceneImpactBuild):
    processes: int | None = option("shard indexes built at once, each in its own process and JVM "
                                   "(default: min(shards, --threads))", type=int, min=1)


@dataclass
class Bm25Build:
    collection: str = option("Anserini collection class (JsonCollection, HtmlCollection, TrecCollection, ...)",
                             "JsonCollection")
    language: str | None = option("Anserini analyzer language (e.g. zh, fa, ru; default English)")
    optimize: bool = option("merge into one segment (slower build, faster search)", False, type=bool)


@dataclass
class ExactBuild:
    quant_scale: float | None = _quant_scale()


# Seismic's build defaults, tuned on topic-structured SPLARE-shaped collections (Seismic's own target MS MARCO
# SPLADE); why 4000 and when "auto": docs/backends.md, "Seismic".
@dataclass
class SeismicBuild:
    quant_scale: float | None = _quant_scale()
    n_postings: int | str = option("average posting-list length kept after pruning, or auto (10%% of the mean "
                                   "list length, at least 100)", 4000, type=int, min=1, auto=True)
    max_fraction: float = option("a list keeps at most n_postings x this", 1.5, type=float, min=1)
    centroid_fraction: float = option("blocks per list = this x list length", 0.1, type=float, min=0, max=1,
                                      min_open=True)
    min_cluster_size: int = option("smallest block", 2, type=int, min=1)
    summary_energy: float = option("share of a block's mass its summary keeps (lower: smaller index, looser bound)",
                                   0.4, type=float, min=0, max=1, min_open=True)
    doc_cut: int = option("terms of a document used to assign it to a block", 15, type=int, min=1)
    nknn: int = option("neighbours per document in the kNN graph (0: none)", 0, type=int, min=0)


# SINDI (VSAG's sparse inverted index, pyvsag): no pruning by default, so its results are the exact
# top k (tested against exact); docs/benchmarks.md has the pruning knobs' recall on SPLARE-shaped vectors.
@dataclass
class SindiBuild:
    quant_scale: float | None = _quant_scale()
    window_size: int = option("documents per SINDI window (its inverted lists are cut into windows of this many)",
                              50_000, type=int, min=10_000, max=60_000)
    doc_prune_ratio: float = option("share of each document's lowest-weight terms dropped at build time "
                                    "(0: none; approximate above 0)", 0.0, type=float, min=0, max=0.99)


@dataclass
class FaissBuild:
    type: str = option("flat (exact), hnsw or ivf", "flat", flag="--faiss-type", choices=("flat", "hnsw", "ivf"))
    M: int = option("HNSW links per vector", 32, flag="--hnsw-m", type=int, min=1)
    efConstruction: int = option("HNSW build beam", 200, flag="--ef-construction", type=int, min=1)
    efSearch: int = option("HNSW search beam stored in the index", 128, flag="--ef-search", type=int, min=1)
    nlist: int = option("IVF lists", 1024, type=int, min=1)
    nprobe: int = option("IVF lists probed, stored in the index", 32, type=int, min=1)
    pq: int | None = option("IVF-PQ: bytes per vector (must divide the dimension; default: no PQ)", type=int, min=1)
    nbits: int = option("IVF-PQ: bits per code", 8, type=int, min=1)
    train_size: int = option("IVF: vectors sampled to train the coarse quantizer", 262_144, type=int, min=1)
    seed: int = option("IVF: sampling seed", 0, type=int)


# ---------------------------------------------------------------------------------------------
# Search options
# ---------------------------------------------------------------------------------------------


@dataclass
class Bm25Search:
    k1: float = option("BM25 k1 (Anserini's default)", 0.9, type=float, min=0)
    b: float = option("BM25 b (Anserini's default)", 0.4, type=float, min=0, max=1)


# Tuned on topic-structured SPLARE-shaped collections (docs/benchmarks.md): recall@10 vs exact >= 0.98 with
# 40-term pooled queries. A grid's query_cut at or above the longest query means "every term".
@dataclass
class SeismicSearch:
    query_cut: int = option("query terms (largest weights) that select posting lists", 20, type=int, min=1,
                            grid=(5, 10, 15, 20, 30, 40, 60, 80, 120, 160, 240, 320, 480, 640, 1000))
    heap_factor: float = option("skip a block whose summary score is below this x the k-th best score "
                                "(lower = more accurate, slower)", 0.9, type=float, min=0, max=1, min_open=True,
                                grid=(1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.3, 0.1))
    n_knn: int = option("neighbours of the kNN graph explored per result (calibrated only on an index built with "
                        "--nknn)", 0, type=int, min=0, grid=(0, 10, 20, 50))
    sorted_summaries: bool = option("score block summaries in sorted order", True, type=bool, flag=None)


@dataclass
class ExactSearch:
    # --batch-size is the CLI's own query batch; this one only splits a batch across threads.
    batch_size: int = option("queries per sparse matrix product", 64, type=int, min=1, flag=None)


@dataclass
class SindiSearch:
    query_prune_ratio: float = option("share of the query's lowest-weight terms skipped (0: none; 50k pooled "
                                      "SPLARE-shaped documents: 0.1 kept recall@10 and @1000 >= 0.99)",
                                      0.0, type=float, min=0, max=0.99)
    term_prune_ratio: float = option("share of each posting list's lowest postings skipped (0: none; costs "
                                     "recall fast: 0.2 gave recall@10 0.75 at 50k)", 0.0, type=float, min=0, max=0.99)
    n_candidate: int = option("candidate heap size (0: SINDI's default, 500 x k)", 0, type=int, min=0, flag=None)


@dataclass
class FaissSearch:
    efSearch: int | None = option("HNSW search beam (default: the index's)", flag="--ef-search", type=int, min=1)
    nprobe: int | None = option("IVF lists probed (default: the index's)", type=int, min=1)


# ---------------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    name: str
    summary: str
    query_kind: QueryKind
    needs_jvm: bool
    build_options: type = NoOptions
    search_options: type = NoOptions
    # several input directories (shards of one collection) in one index
    takes_shards: bool = True
    # its top-k is the exact top-k of the index's scores (no setting trades recall for speed): what
    # `search --target-recall` calibrates approximate backends against, and refuses to calibrate
    rank_safe: bool = False

    def options_class(self, kind: OptionKind) -> type:
        return self.build_options if kind == "build" else self.search_options

    def check_options(self, kind: OptionKind, options: Mapping[str, Any], *, complete: bool = True) -> dict[str, Any]:
        """Every ``kind`` option of this backend: the given ones checked against their limits, the rest at
        their defaults (``complete=False``: the given ones only). An unknown name or a bad value is a
        UsageError; ``None`` stands for "not given"."""
        fields = {f.name: f for f in dataclasses.fields(self.options_class(kind))}
        what = "build" if kind == "build" else "searcher"
        unknown = sorted(set(options) - set(fields))
        if unknown:
            raise UsageError(f"unknown {self.name} option(s) {', '.join(unknown)} "
                             f"({what} options: {', '.join(fields) or 'none'})")
        out = {name: f.default for name, f in fields.items()} if complete else {}
        for name, value in options.items():
            if value is not None:
                out[name] = _check_value(fields[name], value, f"{self.name} option")
        return out

    def check_build_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        return self.check_options("build", options)

    def check_search_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        return self.check_options("search", options)

    def defaults(self, kind: OptionKind) -> dict[str, Any]:
        return self.check_options(kind, {})

    def calibration_grid(self) -> dict[str, tuple]:
        """The search options ``search --target-recall`` calibrates, each with the values it tries
        (fastest first); empty for a backend with nothing to calibrate."""
        return {f.name: f.metadata["grid"] for f in dataclasses.fields(self.search_options) if f.metadata.get("grid")}


BACKENDS: dict[str, Backend] = {b.name: b for b in (
    Backend("lucene", "Lucene impact index of a vectors directory (Anserini, embedded; exact dot products)",
            "sparse", needs_jvm=True, build_options=LuceneImpactBuild, rank_safe=True),
    # One Lucene impact index per input shard, built in parallel processes, searched as one with an
    # exact top-k merge (search/group.py says why impact scores merge exactly and BM25's do not).
    Backend("lucene-group", "one Lucene impact index per input shard directory, built in parallel processes and "
                            "searched as one (exact top-k merge)",
            "sparse", needs_jvm=True, build_options=LuceneGroupBuild, rank_safe=True),
    Backend("seismic", "Seismic approximate index of a vectors directory (fast approximate search; "
                       "SeismicIndexLV above 65,535 features)",
            "sparse", needs_jvm=False, build_options=SeismicBuild, search_options=SeismicSearch),
    Backend("exact", "brute-force sparse index (scipy CSR): the reference approximate backends are measured against",
            "sparse", needs_jvm=False, build_options=ExactBuild, search_options=ExactSearch, rank_safe=True),
    Backend("sindi", "SINDI sparse inverted index (VSAG, pyvsag) of a vectors directory: exact top k without pruning, "
                     "float32 scores",
            "sparse", needs_jvm=False, build_options=SindiBuild, search_options=SindiSearch),
    Backend("faiss", "dense embeddings (Qwen3-Embedding) with faiss",
            "dense", needs_jvm=False, build_options=FaissBuild, search_options=FaissSearch),
    Backend("bm25", "BM25 over raw text in an Anserini collection class (JsonCollection, HtmlCollection, ...)",
            "text", needs_jvm=True, build_options=Bm25Build, search_options=Bm25Search, takes_shards=False),
)}


def get_backend(name: str) -> Backend:
    """The backend called ``name``; an unknown name is a UsageError listing the known ones."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise UsageError(f"unknown backend {name!r} (choose from {', '.join(BACKENDS)})") from None


# ---------------------------------------------------------------------------------------------
# CLI flags, help and docs generated from the declarations
# ---------------------------------------------------------------------------------------------


def _fields(b: Backend, kind: OptionKind) -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(b.options_class(kind))


def _default_text(f: dataclasses.Field) -> str:
    return "" if f.default is None else f"default {str(f.default).lower() if isinstance(f.default, bool) else f.default}"


def _parse(f: dataclasses.Field) -> Callable[[str], Any]:
    kind, auto = f.metadata["type"], f.metadata["auto"]

    def parse(s: str):
        return s if auto and s == "auto" else kind(s)

    parse.__name__ = kind.__name__  # argparse names the type in its error
    return parse


def add_option_flags(parser, kind: OptionKind) -> None:
    """One argument group per backend with its ``kind`` options as flags (a flag that several backends
    share appears once, in the first one's group, and names them all)."""
    import argparse

    owners: dict[str, list[str]] = {}
    for b in BACKENDS.values():
        for f in _fields(b, kind):
            if option_flag(f):
                owners.setdefault(option_flag(f), []).append(b.name)
    done: set[str] = set()
    for b in BACKENDS.values():
        flags = [f for f in _fields(b, kind) if option_flag(f) and option_flag(f) not in done]
        if not flags:
            continue
        group = parser.add_argument_group(f"{b.name} {kind} options")
        for f in flags:
            flag = option_flag(f)
            done.add(flag)
            who = owners[flag]
            notes = [x for x in (limits(f) if f.metadata["type"] is not bool else "", _default_text(f)) if x]
            help_ = f.metadata["help"] + (f" ({'; '.join(notes)})" if notes else "") + \
                (f" [{', '.join(who)}]" if len(who) > 1 else "")
            common = dict(dest=f"opt_{f.name}", default=argparse.SUPPRESS, help=help_)
            if f.metadata["type"] is bool:
                group.add_argument(flag, action="store_const", const=not f.default, **common)
            else:
                group.add_argument(flag, type=_parse(f), metavar=f.name.upper(), **common)


def options_from_args(args, backend: Backend, kind: OptionKind, json_options: str | None) -> dict[str, Any]:
    """The ``kind`` options of ``backend`` given on the command line, checked (the builder or searcher
    completes them with the defaults): ``--options``/``--searcher-options`` JSON first, then the
    generated flags (which win). A flag of another backend is a UsageError."""
    from .formats.jsonl import parse_json_line

    options = parse_json_line(json_options, f"the {kind} options") if json_options else {}
    if not isinstance(options, dict):
        raise UsageError(f"the {kind} options must be a JSON object, got {json_options!r}")
    mine = {f.name for f in _fields(backend, kind)}
    for f in {f.name: f for b in BACKENDS.values() for f in _fields(b, kind)}.values():
        if hasattr(args, f"opt_{f.name}") and f.name not in mine:
            owners = [b.name for b in BACKENDS.values() if f.name in {g.name for g in _fields(b, kind)}]
            raise UsageError(f"{option_flag(f)} applies to {'/'.join(owners)} indexes, not {backend.name}")
    for name in mine:
        if hasattr(args, f"opt_{name}"):
            options[name] = getattr(args, f"opt_{name}")
    return backend.check_options(kind, options, complete=False)


def options_markdown() -> str:
    """The options table of docs/backends.md (between its ``options-table`` markers)."""
    rows = ["| backend | kind | option | CLI flag | default | allowed | what it does |",
            "|---|---|---|---|---|---|---|"]
    for b in BACKENDS.values():
        for kind in ("build", "search"):
            for f in _fields(b, kind):
                default = "computed" if f.default is None else f"`{f.default}`"
                flag = f"`{option_flag(f)}`" if option_flag(f) else "JSON only"
                grid = f.metadata.get("grid")
                calibrated = f" (`--target-recall` tries {', '.join(map(str, grid))})" if grid else ""
                rows.append(f"| {b.name} | {kind} | `{f.name}` | {flag} | {default} | {limits(f) or 'text'} | "
                            f"{f.metadata['help'].replace('%%', '%').replace('|', '/')}{calibrated} |")
    return "\n".join(rows) + "\n"
