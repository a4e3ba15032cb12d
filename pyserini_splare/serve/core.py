"""The one adapter between the service and the toolkit's stages.

Every call the service makes into ``search``, ``index``, ``encode``, ``fusion``, ``rerank``,
``explain``, ``eval``, ``formats``, ``corpus`` and ``topics`` goes through this module, and each is
the function the stage's own CLI calls -- so a served answer equals the CLI's by construction, and
when a stage's API changes, this file is the one place the service needs fixing.

Nothing here is thread-aware: :mod:`.workers` decides which thread calls what.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from .._errors import UsageError

Hit = tuple[str, float]


@dataclass
class IndexHandle:
    """An index opened once for the life of the service."""

    name: str
    path: str
    meta: dict[str, Any]
    backend: str
    query_kind: str  # "text" | "sparse" | "dense"
    needs_jvm: bool
    searcher: Any
    encoder_spec: str | None = None
    corpus: str | None = None
    space: Any = None
    num_docs: int | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        v = self.meta.get("vectors") or {}
        fs = v.get("feature_space") or {}
        return {"name": self.name, "path": self.path, "backend": self.backend, "query_kind": self.query_kind,
                "encoder": self.encoder_spec, "feature_space": fs.get("kind") or fs.get("type") or (repr(self.space)
                                                                                                   if self.space else None),
                "documents": self.num_docs, "corpus": self.corpus, "options": self.options}


def backend_of(index_dir: str) -> Any:
    """The backend record of an index (raises UsageError for a missing or foreign index)."""
    from ..formats.index_meta import read_index_meta
    from ..backends import get_backend

    return get_backend(read_index_meta(index_dir)["backend"])


def start_jvm(heap: str | None = None) -> None:
    from .._java import start_jvm as _start

    _start(heap)


def open_index(spec) -> IndexHandle:
    """Open ``spec.path`` (a ``config.IndexSpec``) with the searcher the search CLI would open (its backend from
    the metadata). ``spec.encoder`` overrides the query encoder the index records; ``spec.corpus`` its corpus."""
    from ..formats.index_meta import read_index_meta
    from ..backends import get_backend
    from ..search import open_searcher

    meta = read_index_meta(spec.path)
    backend = get_backend(meta["backend"])
    if spec.corpus and not Path(spec.corpus).exists():  # named in the config: a start-up error, not a 404 later
        raise UsageError(f"index {spec.name}: its corpus {spec.corpus} is not there")
    try:
        searcher = open_searcher(spec.path, **dict(spec.options or {}))
    except (TypeError, ValueError) as e:
        raise UsageError(f"index {spec.name}: bad searcher options for a {backend.name} index: {e}") from None
    vmeta = meta.get("vectors") or {}
    encoder = (spec.encoder or (vmeta.get("encoder") or {}).get("spec")
               or ((meta.get("dense") or {}).get("encoder") or {}).get("spec"))
    space = getattr(searcher, "space", None)
    source = spec.corpus or _recorded_corpus(meta)
    num = getattr(searcher, "num_docs", None)
    if num is None:
        num = (vmeta.get("stats") or {}).get("documents")
    return IndexHandle(name=spec.name, path=str(spec.path), meta=meta, backend=backend.name,
                       query_kind=backend.query_kind, needs_jvm=backend.needs_jvm, searcher=searcher,
                       encoder_spec=encoder if backend.query_kind != "text" else None, corpus=source, space=space,
                       num_docs=None if num is None else int(num), options=dict(spec.options or {}))


# Backends opened once before ``serve --workers N`` forks, shared copy-on-write (no thread, the index in
# Rust allocations); the JVM, torch and numba do not survive a fork. docs/serve.md, "Several processes".
FORK_SHARED_BACKENDS = ("seismic",)


def open_before_fork(specs) -> dict[str, IndexHandle]:
    """The indexes of ``specs`` (``config.IndexSpec``) of a :data:`FORK_SHARED_BACKENDS` backend, opened."""
    out = {}
    for spec in specs:
        if backend_of(spec.path).name in FORK_SHARED_BACKENDS:
            out[spec.name] = open_index(spec)
    return out


def _recorded_corpus(meta: Mapping[str, Any]) -> str | None:
    """The corpus an index records: the vectors' source (what encode read), or a BM25 index's input."""
    vmeta = meta.get("vectors") or {}
    src = (vmeta.get("stats") or {}).get("source")
    if meta.get("backend") == "bm25":
        src = meta.get("source")
    if isinstance(src, list):
        src = src[0] if len(src) == 1 else None
    return src if src and Path(src).exists() else None


def searcher_with_options(handle: IndexHandle, options: Mapping[str, Any]) -> Any:
    """A searcher on ``handle``'s index with per-request ``options`` (Seismic's query_cut, BM25's k1/b...),
    checked as the search CLI checks them.

    Where every option is a plain attribute of the open searcher (Seismic's query settings) the
    loaded index is shared by a shallow copy -- reloading a Seismic index per setting would cost
    its whole load time; otherwise (BM25's k1/b live in Java) a new searcher is opened."""
    import copy

    from ..backends import get_backend
    from ..search import open_searcher

    merged = {**handle.options, **options}
    try:
        kwargs = get_backend(handle.backend).check_options("search", merged, complete=False)
    except UsageError as e:
        raise UsageError(f"bad searcher options for a {handle.backend} index: {e}") from None
    try:
        if not all(hasattr(handle.searcher, n) for n in kwargs):
            return open_searcher(handle.path, **kwargs)
        s = copy.copy(handle.searcher)
        for n, v in kwargs.items():
            cur = getattr(handle.searcher, n)
            if isinstance(v, bool) != isinstance(cur, bool) or (not isinstance(v, bool) and (
                    not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0)):
                raise ValueError(f"{n} must be a non-negative number like {cur!r}, got {v!r}")
            setattr(s, n, type(cur)(v))
        return s
    except (TypeError, ValueError) as e:
        raise UsageError(f"bad searcher options for a {handle.backend} index: {e}") from None


def batch_search_with(searcher: Any, queries: Mapping[str, Any], k: int, threads: int = 1) -> dict[str, list[Hit]]:
    """``searcher.batch_search`` (a searcher with per-request options, see :func:`searcher_with_options`);
    one query is one search on every backend (BM25: search/lucene.py), so there is no single-query path."""
    return searcher.batch_search(queries, k=k, threads=threads)


WARMUP_SEARCHES = 20_000  # enough for CACM's BM25 search to run at its compiled speed (see warm_up)


def warm_up(handle: IndexHandle, seconds: float, k: int = 10, searches: int = WARMUP_SEARCHES) -> int:
    """Search ``handle`` with queries drawn from its own terms (a Lucene or BM25 searcher's
    ``warmup_queries``) until ``searches`` are done or ``seconds`` have passed; the number of searches
    (0: the backend has nothing to warm).

    Why: the JVM runs Lucene's search interpreted until its JIT has compiled it (docs/serve.md, "JIT
    warm-up"). Searched in batches of 1 to 32 (:data:`_WARMUP_BATCHES`), the calls the batcher makes;
    the time bound keeps a large index's start short. It cannot compile for the queries the server will
    get: the compiled code follows the profile of what it runs."""
    import itertools
    import time

    make = getattr(handle.searcher, "warmup_queries", None)
    if make is None or seconds <= 0:
        return 0
    queries = make(512)
    if not queries:
        return 0
    n, end = 0, time.monotonic() + seconds
    sizes = itertools.cycle(_WARMUP_BATCHES)
    while n < searches and time.monotonic() < end:
        batch = {str(i): queries[(n + i) % len(queries)] for i in range(next(sizes))}
        batch_search_with(handle.searcher, batch, k)
        n += len(batch)
    return n


# Batch sizes the warm-up cycles through: a served batch is whatever is queued, often 1 query at low
# concurrency (BM25: a Java call of its own, Bm25Searcher._search_one) and up to 32 (one call for all,
# _search_many); each path is compiled code of its own.
_WARMUP_BATCHES = (1, 2, 1, 4, 1, 8, 32)


def check_query_vector(handle: IndexHandle, vector: Any, quantized: bool = False) -> dict[str, float]:
    """A pre-encoded ``{term: weight}`` query: a non-empty mapping of finite non-negative numbers;
    ``quantized``: integers too, returned as a ``QuantizedQuery`` (``--query-vectors-quantized``).

    Its terms and quantized weights are checked by the searcher's own ``prepare`` in the batch
    (``Service._search_batch`` retries a failed batch query by query), not a second time here on the event loop."""
    if not isinstance(vector, Mapping) or not vector:
        raise UsageError("'vector' must be a non-empty object {term: weight}")
    out = {}
    integral = True
    for t, w in vector.items():
        if type(w) is int:  # what JSON's integers parse to (a quantized query): no float checks
            if w < 0:
                raise UsageError(f"weight of {t!r} must be a finite non-negative number, got {w!r}")
        elif isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise UsageError(f"weight of {t!r} must be a finite non-negative number, got {w!r}")
        elif quantized:
            if float(w).is_integer():
                w = int(w)
            else:
                integral = False
        out[str(t)] = w
    if not quantized:
        return out
    if not integral:
        raise UsageError("'quantized' vectors must have integer weights")
    from ..search import QuantizedQuery

    return QuantizedQuery(out)


# -- query encoders ---------------------------------------------------------------------------


def load_query_encoder(spec: str, device: str = "cpu") -> Any:
    """The encoder ``search --encoder SPEC`` loads (same options: the model's own query length)."""
    from ..encode import load_encoder

    return load_encoder(spec, device=device)


def check_encoder(handle: IndexHandle, encoder: Any) -> None:
    """The check ``search --encoder`` makes: a sparse encoder must share the index's feature space."""
    from ..encode import SparseEncoder
    from ..formats.spaces import FeatureSpace

    if handle.query_kind != "sparse":
        return
    if not isinstance(encoder, SparseEncoder):
        raise UsageError(f"index {handle.name}: {handle.encoder_spec!r} is not a sparse encoder")
    index_space = FeatureSpace.from_meta(handle.meta["vectors"]["feature_space"])
    if encoder.space != index_space:
        raise UsageError(f"index {handle.name}: the query encoder {handle.encoder_spec!r} does not share the index's "
                         f"feature space {index_space!r}")


def encode_queries(encoder: Any, texts: Sequence[str]) -> list[Any]:
    """Texts -> queries, as ``search --encoder`` builds them: ``{term: float}`` (sparse), float32 rows (dense)."""
    from ..encode import DenseEncoder

    out = encoder.encode(list(texts), "query")
    if isinstance(encoder, DenseEncoder):
        return [row for row in out]
    res = []
    for v in out:
        v = v.nonzero()
        res.append({t: float(w) for t, w in zip(encoder.space.terms(v.ids), v.weights)})
    return res


# -- documents ----------------------------------------------------------------------------------


def iter_corpus(corpus: str):
    """``(docid, text)`` of a corpus as the stages read it (JSONL, a folder of JSONL, an HTML tarball, or a
    BM25 input folder holding tarballs, as Anserini's HtmlCollection reads CACM)."""
    from ..corpus import open_corpus

    p = Path(corpus)
    if p.is_dir():
        tars = sorted(f for f in p.iterdir() if f.name.lower().endswith((".tar.gz", ".tgz", ".tar")))
        if tars:
            for t in tars:
                for d in open_corpus(str(t)):
                    yield d.id, d.text
            return
    for d in open_corpus(corpus):
        yield d.id, d.text


def open_documents(corpus: str) -> Mapping[str, str]:
    """``{docid: text}`` of a corpus: read from disk on demand for plain JSONL (an offsets table in
    memory, see ``corpus.jsonl_texts``), all in memory otherwise (gzip, tarballs, ir_datasets)."""
    from ..corpus import jsonl_texts

    texts = jsonl_texts(corpus)
    return texts if texts is not None else dict(iter_corpus(corpus))


def open_document_vectors(handle: IndexHandle) -> Mapping[str, dict[str, int]]:
    """``{docid: {term: int impact}}`` of the vectors directory a sparse index was built from, read
    from its part files on demand (all in memory for a foreign folder of float weights)."""
    from ..formats.vectors_reader import open_collection

    src = (handle.meta.get("source"))
    if not src:
        raise UsageError(f"index {handle.name} records no vectors directory")
    dirs = src if isinstance(src, list) else [src]
    if not all(Path(d).is_dir() for d in dirs):
        raise UsageError(f"index {handle.name}: its vectors directory {dirs[0]} is not there")
    collection = open_collection(dirs, kind="sparse")
    on_disk = collection.records_on_disk()
    return on_disk if on_disk is not None else {docid: vec for docid, vec, _ in collection.iter_records()}


# -- explain ------------------------------------------------------------------------------------


def load_labels(path: str) -> dict[int, str]:
    from ..explain import load_labels as _load

    return _load(path)


def explain_match(handle: IndexHandle, query: Mapping[str, int], doc: Mapping[str, int],
                  labels: Mapping[int, str] | None = None, top: int = 10) -> list[dict[str, Any]]:
    """The terms (or SAE latents) a hit matched on: query weight x document impact per shared term,
    largest contribution first, named through the explain stage (labels when known)."""
    from ..explain import explain_vector

    contrib = {t: float(query[t]) * float(doc[t]) for t in query if t in doc}
    if not contrib:
        return []
    rows = explain_vector(contrib, handle.space, labels or None, top=top)
    return [{"term": r.term, "feature": r.feature, "contribution": r.weight, "query_weight": float(query[r.term]),
             "doc_weight": float(doc[r.term]), "label": r.label} for r in rows]


def quantize_for(handle: IndexHandle, vector: Mapping[str, float]) -> dict[str, int]:
    """The integer query the sparse searcher actually scores with (its own ``prepare``)."""
    return handle.searcher.prepare("query", vector)


def bm25_term_contributions(handle: IndexHandle, text: str, docid: str, k1: float = 0.9, b: float = 0.4) -> list[dict]:
    """Per analyzed query term, its BM25 weight in ``docid`` (Pyserini's ``compute_bm25_term_weight``)."""
    reader = _bm25_reader(handle)
    terms = reader.analyze(text)
    seen, out = set(), []
    for t in terms:
        if t in seen:
            continue
        seen.add(t)
        w = float(reader.compute_bm25_term_weight(docid, t, analyzer=None, k1=k1, b=b))
        if w > 0:
            out.append({"term": t, "feature": None, "contribution": w * terms.count(t), "query_weight": float(terms.count(t)),
                        "doc_weight": w, "label": None})
    out.sort(key=lambda r: (-r["contribution"], r["term"]))
    return out


_READERS: dict[str, Any] = {}


def _bm25_reader(handle: IndexHandle):
    from pyserini.index.lucene import LuceneIndexReader

    r = _READERS.get(handle.path)
    if r is None:
        r = _READERS[handle.path] = LuceneIndexReader(handle.path)
    return r


# -- fusion, rerank, eval, topics ---------------------------------------------------------------


def fuse(runs: Sequence[Mapping[str, Mapping[str, float]]], method: str = "rrf", **settings) -> dict[str, dict[str, float]]:
    """``fusion``'s ``fuse_runs`` (the fusion CLI's call); ValueError -> UsageError as the CLI does."""
    from ..fusion import fuse_runs

    try:
        fused, _ = fuse_runs(runs, method, **settings)
    except ValueError as e:
        raise UsageError(str(e)) from None
    return fused


def fusion_methods() -> list[str]:
    from ..fusion import METHODS

    return list(METHODS)


def load_reranker(model: str, **options) -> Any:
    from ..rerank import Qwen3Reranker

    try:
        return Qwen3Reranker(model, **options)
    except ValueError as e:
        raise UsageError(str(e)) from None


def rerank_hits(reranker: Any, query: str, hits: Mapping[str, float], texts: Mapping[str, str], depth: int,
                batch_size: int = 8) -> dict[str, float]:
    """What ``rerank_run`` does for one query: score the top ``depth`` and ``merge`` them above the rest."""
    from ..formats.runs import ranked
    from ..rerank import merge

    docs = [d for d, _ in ranked(hits, depth)]
    scores = reranker.score(query, [texts[d] for d in docs], batch_size=batch_size)
    return merge(hits, dict(zip(docs, map(float, scores))), depth)


def ranked(hits: Mapping[str, float], depth: int | None = None) -> list[Hit]:
    from ..formats.runs import ranked as _ranked

    return _ranked(hits, depth)


def evaluate(qrels: str, run: Mapping[str, Mapping[str, float]], metrics: Sequence[str], data_dir: str | None = None,
             per_query: bool = False):
    from ..eval import evaluate as _evaluate

    return _evaluate(qrels, run, metrics, per_query=per_query, data_dir=data_dir)


def get_qrels(name: str, data_dir: str | None = None) -> dict[str, dict[str, int]]:
    from ..topics import get_qrels as _get

    return _get(name, data_dir).judgments

