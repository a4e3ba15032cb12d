"""The one registry of index backends: how each is built, how it is searched, what it takes.

A :class:`Backend` names its builder and its searcher as lazy ``"module:attr"`` strings (importing
this module imports no torch, starts no JVM, loads no faiss), the kind of query it is searched with
(sparse ``{term: weight}`` vectors, dense embeddings, or text), whether it needs the JVM, and two
options dataclasses -- build options and search options -- whose fields carry their help text. The
``index`` and ``search`` CLIs generate their backend flags and ``--help`` from these dataclasses, and
both the CLIs and the Python API refuse an option the chosen backend does not have with one line
(nothing is silently dropped).

An option left at ``None`` means "the backend's own default" (its value and the reason for it live
with the backend's code, e.g. :data:`pyserini_splare.index.seismic.DEFAULT_BUILD`).

Builder signature (agreed for every backend)::

    build(inputs: list[path], index: path, *, threads=1, overwrite=False, **options) -> index metadata

``inputs`` are one or more vectors directories (the shards ``encode --shard-id i --shard-num n``
writes are one collection) or, for BM25, collection folders.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping, Sequence

from .._errors import UsageError
from .._lazy import load_callable

QueryKind = Literal["sparse", "dense", "text"]


def option(help: str, *, flag: str | None = "", parse: Callable[[str], Any] | str = str) -> Any:
    """A backend option: ``help`` for ``--help``; ``flag`` its CLI flag ("" = ``--name-with-dashes``,
    None = reachable through the JSON options only); ``parse`` its argparse type, or "true"/"false"
    for a switch that sets the option to that value."""
    return field(default=None, metadata={"help": help, "flag": flag, "parse": parse})


def _int_or_auto(s: str) -> int | str:
    return s if s == "auto" else int(s)


def option_flag(f: dataclasses.Field) -> str | None:
    """The CLI flag of an options-dataclass field (None: JSON options only)."""
    flag = f.metadata.get("flag", "")
    if flag is None:
        return None
    return flag or "--" + f.name.replace("_", "-")


# ---------------------------------------------------------------------------------------------
# Build options
# ---------------------------------------------------------------------------------------------


@dataclass
class NoOptions:
    """A backend without options of this kind."""


def _quant_scale() -> Any:
    return option("quantize the float weights of a JsonVectorCollection folder without meta.json at this scale "
                  "(a vectors directory written by encode is already quantized)", parse=float)


@dataclass
class LuceneImpactBuild:
    optimize: bool | None = option("merge into one segment (slower build, faster search)", parse="true")
    validate: bool | None = option("skip checking every term against the feature space",
                                   flag="--no-validate", parse="false")
    method: str | None = option("termfreq (default; cost independent of the quantization scale) or anserini "
                                "(Anserini's IndexCollection, the reference)", flag="--impact-method")
    ram_buffer_mb: float | None = option("the Lucene writer's indexing buffer in MB, shared by its threads "
                                         "(default 256 per thread, at most half the JVM heap)", parse=float)
    quant_scale: float | None = _quant_scale()


@dataclass
class Bm25Build:
    collection: str | None = option("Anserini collection class (default JsonCollection)")
    language: str | None = option("Anserini analyzer language (e.g. zh, fa, ru; default English)")
    optimize: bool | None = option("merge into one segment (slower build, faster search)", parse="true")


@dataclass
class LuceneGroupBuild(LuceneImpactBuild):
    processes: int | None = option("shard indexes built at once, each in its own process and JVM "
                                   "(default: min(shards, --threads))", parse=int)


@dataclass
class ExactBuild:
    quant_scale: float | None = _quant_scale()


@dataclass
class SeismicBuild:
    quant_scale: float | None = _quant_scale()
    n_postings: int | str | None = option("average posting-list length kept after pruning, or 'auto' "
                                          "(10%% of the mean list length; default 4000)", parse=_int_or_auto)
    max_fraction: float | None = option("a list keeps at most n_postings x this (default 1.5)", parse=float)
    centroid_fraction: float | None = option("blocks per list = this x list length (default 0.1)", parse=float)
    min_cluster_size: int | None = option("smallest block (default 2)", parse=int)
    summary_energy: float | None = option("share of a block's mass its summary keeps (default 0.4)", parse=float)
    doc_cut: int | None = option("terms of a document used to assign it to a block (default 15)", parse=int)
    nknn: int | None = option("neighbours per document in the kNN graph (default 0: none)", parse=int)


@dataclass
class FaissBuild:
    type: str | None = option("flat (exact, default), hnsw or ivf", flag="--faiss-type")
    M: int | None = option("HNSW links per vector (default 32)", flag="--hnsw-m", parse=int)
    efConstruction: int | None = option("HNSW build beam (default 200)", flag="--ef-construction", parse=int)
    efSearch: int | None = option("HNSW search beam stored in the index (default 128)", flag="--ef-search",
                                  parse=int)
    nlist: int | None = option("IVF lists (default 1024)", parse=int)
    nprobe: int | None = option("IVF lists probed, stored in the index (default 32)", parse=int)
    pq: int | None = option("IVF-PQ: bytes per vector (must divide the dimension)", parse=int)
    nbits: int | None = option("IVF-PQ: bits per code (default 8)", parse=int)
    train_size: int | None = option("IVF: vectors sampled to train the coarse quantizer (default 262144)",
                                    parse=int)
    seed: int | None = option("IVF: sampling seed (default 0)", parse=int)


# ---------------------------------------------------------------------------------------------
# Search options
# ---------------------------------------------------------------------------------------------


@dataclass
class Bm25Search:
    k1: float | None = option("BM25 k1 (default 0.9, Anserini's)", parse=float)
    b: float | None = option("BM25 b (default 0.4, Anserini's)", parse=float)


@dataclass
class SeismicSearch:
    query_cut: int | None = option("query terms (largest weights) that select posting lists (default 20)",
                                   parse=int)
    heap_factor: float | None = option("skip a block whose summary score is below this x the k-th best score, "
                                       "in (0, 1] (default 0.9; lower = more accurate, slower)", parse=float)
    n_knn: int | None = option("neighbours of the kNN graph explored per result (default 0)", parse=int)
    sorted_summaries: bool | None = option("score block summaries in sorted order (default true)", flag=None)


@dataclass
class ExactSearch:
    # --batch-size is the CLI's own query batch; this one only splits a batch across threads.
    batch_size: int | None = option("queries per sparse matrix product (default 64)", flag=None)


@dataclass
class FaissSearch:
    efSearch: int | None = option("HNSW search beam (overrides the index's)", flag="--ef-search", parse=int)
    nprobe: int | None = option("IVF lists probed (overrides the index's)", parse=int)


# ---------------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    name: str
    summary: str
    builder: str
    searcher: str
    query_kind: QueryKind
    needs_jvm: bool
    build_options: type = NoOptions
    search_options: type = NoOptions

    def load_builder(self) -> Callable[..., dict]:
        return load_callable(self.builder)

    def load_searcher(self) -> type:
        return load_callable(self.searcher)

    def search_option_names(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self.search_options)]

    def check_build_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The options as keyword arguments for the builder (None = default, left out); unknown names raise."""
        return _check(self.build_options, options, self.name, "build")

    def check_search_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The options as keyword arguments for the searcher (None = default, left out); unknown names raise."""
        return _check(self.search_options, options, self.name, "searcher")


def _check(cls: type, options: Mapping[str, Any], name: str, kind: str) -> dict[str, Any]:
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(options) - set(names))
    if unknown:
        allowed = ", ".join(names) if names else "none"
        raise UsageError(f"unknown {name} option(s) {', '.join(unknown)} ({kind} options: {allowed})")
    return {k: v for k, v in dataclasses.asdict(cls(**options)).items() if v is not None}


BACKENDS: dict[str, Backend] = {b.name: b for b in (
    Backend("lucene", "Lucene impact index of a vectors directory (Anserini, embedded; exact dot products)",
            "pyserini_splare.index.lucene:build", "pyserini_splare.search.lucene:ImpactSearcher",
            "sparse", needs_jvm=True, build_options=LuceneImpactBuild),
    # One Lucene impact index per input shard, built in parallel processes, searched as one with an
    # exact top-k merge (search/group.py says why impact scores merge exactly and BM25's do not).
    Backend("lucene-group", "Lucene impact indexes, one per input shard built in parallel, searched as one "
                            "(exact top-k merge)",
            "pyserini_splare.search.group:build_lucene_group", "pyserini_splare.search.group:LuceneGroupSearcher",
            "sparse", needs_jvm=True, build_options=LuceneImpactBuild),
    Backend("seismic", "Seismic approximate index of a vectors directory (fast approximate search; "
                       "SeismicIndexLV above 65,535 features)",
            "pyserini_splare.index.seismic:build_seismic_index", "pyserini_splare.search.seismic:SeismicSearcher",
            "sparse", needs_jvm=False, build_options=SeismicBuild, search_options=SeismicSearch),
    Backend("exact", "brute-force sparse index (scipy CSR): the reference approximate backends are measured against",
            "pyserini_splare.index.exact:build_exact_index", "pyserini_splare.search.exact:ExactSearcher",
            "sparse", needs_jvm=False, build_options=ExactBuild, search_options=ExactSearch),
    Backend("faiss", "dense embeddings (Qwen3-Embedding) with faiss",
            "pyserini_splare.index.faiss:build_faiss_index", "pyserini_splare.search.faiss:FaissSearcher",
            "dense", needs_jvm=False, build_options=FaissBuild, search_options=FaissSearch),
    Backend("lucene-group", "one Lucene impact index per input shard directory, built in parallel processes and "
                            "searched as one (exact top-k merge; search/group.py)",
            "pyserini_splare.search.group:build_lucene_group", "pyserini_splare.search.group:LuceneGroupSearcher",
            "sparse", needs_jvm=True, build_options=LuceneGroupBuild),
    Backend("bm25", "BM25 over raw text in an Anserini collection class (JsonCollection, HtmlCollection, ...)",
            "pyserini_splare.index.lucene:build_bm25_index", "pyserini_splare.search.lucene:Bm25Searcher",
            "text", needs_jvm=True, build_options=Bm25Build, search_options=Bm25Search),
)}


def get_backend(name: str) -> Backend:
    """The backend called ``name``; an unknown name is a UsageError listing the known ones."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise UsageError(f"unknown backend {name!r} (choose from {', '.join(BACKENDS)})") from None


def build_index(backend: str, inputs: str | os.PathLike | Sequence[str | os.PathLike], index: str | os.PathLike, *,
                threads: int = 1, overwrite: bool = False, **options) -> dict[str, Any]:
    """Build an index of ``backend`` from ``inputs`` (one or more directories) into ``index``.

    ``options`` are the backend's build options (see its dataclass); an unknown one is a UsageError.
    Returns the index metadata.
    """
    b = get_backend(backend)
    kwargs = b.check_build_options(options)
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    inputs = [os.fspath(p) for p in inputs]
    if not inputs:
        raise UsageError("no input directory given")
    build = b.load_builder()
    return build(_inputs_for(build, inputs, b.name), os.fspath(index), threads=threads, overwrite=overwrite, **kwargs)


def _inputs_for(build: Callable, inputs: list[str], name: str):
    """The agreed signature takes the list; a builder still taking one ``input`` gets the one directory.

    Transitional: remove once every builder's first parameter is ``inputs``."""
    first = next(iter(inspect.signature(build).parameters))
    if first == "inputs":
        return inputs
    if len(inputs) > 1:
        raise UsageError(f"the {name} backend does not take several input directories yet")
    return inputs[0]


# ---------------------------------------------------------------------------------------------
# CLI flags generated from the options dataclasses (used by the index and search CLIs)
# ---------------------------------------------------------------------------------------------

OptionKind = Literal["build", "search"]


def _fields(b: Backend, kind: OptionKind) -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(b.build_options if kind == "build" else b.search_options)


def add_option_flags(parser, kind: OptionKind) -> None:
    """One argument group per backend with its ``kind`` options as flags (a flag that several
    backends share appears once, in the first one's group, and names them all)."""
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
            help_ = f.metadata["help"] + (f" ({', '.join(who)})" if len(who) > 1 else "")
            parse = f.metadata["parse"]
            common = dict(dest=f"opt_{f.name}", default=argparse.SUPPRESS, help=help_)
            if parse in ("true", "false"):
                group.add_argument(flag, action="store_const", const=parse == "true", **common)
            else:
                group.add_argument(flag, type=parse, metavar=f.name.upper(), **common)


def options_from_args(args, backend: Backend, kind: OptionKind, json_options: str | None) -> dict[str, Any]:
    """The ``kind`` options of ``backend`` given on the command line: ``--options``/``--searcher-options``
    JSON first, then the generated flags (which win). A flag of another backend is a UsageError."""
    from ..formats.jsonl import parse_json_line

    options = parse_json_line(json_options, f"the {kind} options") if json_options else {}
    mine = {f.name for f in _fields(backend, kind)}
    for f in {f.name: f for b in BACKENDS.values() for f in _fields(b, kind)}.values():
        if hasattr(args, f"opt_{f.name}") and f.name not in mine:
            owners = [b.name for b in BACKENDS.values() if f.name in {g.name for g in _fields(b, kind)}]
            raise UsageError(f"{option_flag(f)} applies to {'/'.join(owners)} indexes, not {backend.name}")
    for name in mine:
        if hasattr(args, f"opt_{name}"):
            options[name] = getattr(args, f"opt_{name}")
    return backend.check_build_options(options) if kind == "build" else backend.check_search_options(options)
