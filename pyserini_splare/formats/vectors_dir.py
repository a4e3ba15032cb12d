"""The vectors directory: what ``encode`` writes and every index reads. This module owns the format.

Layout (sparse, ``meta.json`` format ``pyserini_splare.vectors/1``)::

    part-00000.jsonl   {"id": "d1", "contents": "", "vector": {"L12": 143, "L907": 88}}
    part-00001.jsonl   ...
    meta.json          {"format": "pyserini_splare.vectors/1", "feature_space": {...},
                        "feature_space_fingerprint": "...", "quant_scale": 100, "encoder": {...},
                        "pooling": {...}, "stats": {...}}

The part files are exactly Pyserini/Anserini's ``JsonVectorCollection`` and what
``seismic.SeismicIndex.build`` reads, so no index needs a conversion step. Weights on disk are
integer impacts ``round(w * quant_scale)`` in ``[1, MAX_IMPACT]`` (:mod:`.quant`).

Dense (``meta.json`` format ``pyserini_splare.dense/1``: ``dim``, ``count``, ``encoder``,
``normalized``, ``stats``)::

    part-00000.ids.txt  one docid per line
    part-00000.npy      float32 [n, dim], row i embeds line i of the ids file

Both formats are versioned by the ``/1`` of their ``format`` string; :class:`VectorsMeta` is the one
schema (reader and writer) of both.

Writing: :class:`VectorsWriter`, the one writer (``encode``, the demo, scripts, benchmarks, tests).

* Streaming: ``with VectorsWriter(out, space=S) as w: w.write(docid, SparseVector)`` (dense:
  ``VectorsWriter(out, dim=D)`` and ``w.write_dense(ids, float32 [n, D])``); parts roll over every
  ``part_size`` documents; ``meta.json`` is written and ``OUT.partial`` renamed to ``OUT`` when the
  block ends without error (a UsageError removes ``OUT.partial``; another exception -- a crash, Ctrl-C
  -- keeps it for resuming).
* Parts by key (resumable, and what several processes use to write one directory): the writer
  builds ``OUT.partial/``; ``with w.part(key) as p: p.add(docid, vec)`` (dense: ``p.add_batch(ids,
  emb)``) writes ``part-{key}.jsonl`` (``key`` an int >= 0, written ``%05d``, or a string of
  ``[A-Za-z0-9_-]``) to a temporary file and, when the block ends without error, renames it into
  place and marks it complete in ``_state/part-{key}.json`` (its statistics) with its id hashes in
  ``_state/part-{key}.ids.npy``. Each part is atomic: a part written again (a retried Ray block)
  replaces the earlier one, never adds to it. ``w.done(key)`` returns a completed part's statistics
  (None otherwise): a rerun skips completed parts. ``w.finish(extra_stats)`` checks ids across all
  parts, merges statistics, writes ``meta.json`` and renames ``OUT.partial`` to ``OUT``.
* Resuming: ``_state/config.json`` holds what decides the output's bytes (the caller's ``config``
  plus the writer's own settings). A writer constructed on an existing ``OUT.partial`` with the same
  config resumes (``w.resumed``); with another config it refuses, naming the settings that differ.
* Several processes: a constructed writer pickles (no open files; ``part()`` opens its own), so a
  driver constructs it once and ships it to workers (Ray actors/tasks), which call ``part(key)`` with
  deterministic keys (e.g. the block index); the driver calls ``finish``. Workers must share the
  filesystem holding ``OUT.partial``.

Reading: :func:`open_collection` (one or more directories as one :class:`Collection`: shard
directories written by ``encode --shard-id i --shard-num n``), whose ``iter_vectors`` /
``validate`` / ``iter_dense`` every index builder uses. A folder of JSONL files without
``meta.json`` (a JsonVectorCollection this toolkit did not write) opens as a *foreign* collection.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import orjson

from .._cli import UsageError, atomic_file, check_output_dir, partial_dir, progress
from .idhash import IdHashSet, find_repeated, id_hash
from .jsonl import iter_json_lines, parse_json_line, read_id
from .jsonvector import LineFormatter, check_vector
from .quant import (DEFAULT_QUANT_SCALE, MAX_IMPACT, QuantStats, check_scale, dequantize, impact_bound_error,
                    quantize, quantize_vector)
from .spaces import FeatureSpace, ForeignSpace
from .sparse import SparseVector, prune_segments

VECTORS_FORMAT = "pyserini_splare.vectors/1"
DENSE_FORMAT = "pyserini_splare.dense/1"
META_FILE = "meta.json"
STATE_DIR = "_state"
STATE_VERSION = 2

# Documents per part file. Anserini indexes a collection with one thread per input file, so a
# single 100k-document part indexed on one core (measured: docs/benchmarks.md); 10,000 keeps every
# thread busy from 20k documents up, and is the encode CLI's --part-size default.
DEFAULT_PART_SIZE = 10_000
# Bytes of lines read (and parsed by numpy) at a time: ~170 400-term documents.
_READ_CHUNK = 1 << 20

_KEY = re.compile(r"[A-Za-z0-9_-]+")
_F32_MAX = float(np.finfo(np.float32).max)  # SparseVector weights are float32
# Sparse per-part statistics, summed over parts (the max_* and q_max_rel_error are maxima).
_SUMMED = ("documents", "l0_before", "l0_after", "postings", "dropped_empty", "q_weights", "q_zeroed", "q_sum_abs_error")


# --------------------------------------------------------------------------------------------
# meta.json
# --------------------------------------------------------------------------------------------


@dataclass
class VectorsMeta:
    """The ``meta.json`` of a vectors directory (and, copied, of every index built from it).

    ``kind`` is ``"sparse"`` (``feature_space``, ``quant_scale``, ``pooling``) or ``"dense"``
    (``dim``, ``count``, ``normalized``); ``encoder`` and ``stats`` are common. ``foreign`` marks
    the metadata made up for a JsonVectorCollection folder without ``meta.json``.
    """

    feature_space: dict[str, Any] | None = None
    quant_scale: float | None = None
    encoder: dict[str, Any] = field(default_factory=dict)
    pooling: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    format: str = VECTORS_FORMAT
    dim: int | None = None
    count: int | None = None
    normalized: bool = True
    foreign: bool = False

    @property
    def kind(self) -> str:
        return "dense" if self.format == DENSE_FORMAT else "sparse"

    @property
    def space(self) -> FeatureSpace:
        if self.feature_space is None:
            raise UsageError("dense vectors have no feature space")
        return FeatureSpace.from_meta(self.feature_space)

    def to_json(self) -> dict[str, Any]:
        if self.kind == "dense":
            return {"format": self.format, "dim": int(self.dim), "count": int(self.count), "encoder": self.encoder,
                    "normalized": bool(self.normalized), "stats": self.stats}
        out = {
            "format": self.format,
            "feature_space": self.feature_space,
            "feature_space_fingerprint": FeatureSpace.from_meta(self.feature_space).fingerprint(),
            "quant_scale": self.quant_scale,
            "encoder": self.encoder,
            "pooling": self.pooling,
            "stats": self.stats,
        }
        if self.foreign:
            out["foreign"] = True
        return out

    @classmethod
    def from_json(cls, obj: Any, where: str = META_FILE) -> "VectorsMeta":
        fmt = obj.get("format") if isinstance(obj, dict) else None
        if fmt == DENSE_FORMAT:
            dim, count = obj.get("dim"), obj.get("count")
            if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
                raise UsageError(f"{where}: 'dim' must be a positive integer, got {dim!r}")
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise UsageError(f"{where}: 'count' must be a non-negative integer, got {count!r}")
            return cls(format=fmt, dim=dim, count=count, encoder=dict(obj.get("encoder") or {}),
                       normalized=bool(obj.get("normalized", True)), stats=dict(obj.get("stats") or {}))
        if fmt != VECTORS_FORMAT:
            raise UsageError(f"{where}: not a pyserini_splare vectors meta (format {fmt!r})")
        try:
            return cls(
                feature_space=dict(obj["feature_space"]),
                quant_scale=check_scale(float(obj["quant_scale"])),
                encoder=dict(obj.get("encoder") or {}),
                pooling=dict(obj.get("pooling") or {}),
                stats=dict(obj.get("stats") or {}),
                foreign=bool(obj.get("foreign", False)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise UsageError(f"{where}: incomplete metadata ({e})") from None


def read_meta(vectors_dir: str | os.PathLike, kind: str | None = None) -> VectorsMeta:
    """Read and check ``DIR/meta.json``; ``kind`` ("sparse" | "dense") refuses the other kind."""
    d = Path(vectors_dir)
    if not d.is_dir():
        raise UsageError(f"{d} is not a directory" if d.exists() else f"vectors directory {d} does not exist")
    p = d / META_FILE
    if not p.is_file():
        raise UsageError(f"{d} has no {META_FILE}: not a vectors directory written by pyserini_splare.encode")
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"{p}: malformed JSON ({e})") from None
    fmt = obj.get("format") if isinstance(obj, dict) else None
    if kind is not None and fmt in (VECTORS_FORMAT, DENSE_FORMAT) and fmt != (DENSE_FORMAT if kind == "dense"
                                                                                else VECTORS_FORMAT):
        hint = ("dense vectors go to the faiss backend" if kind == "sparse"
                else "sparse vectors go to the lucene, seismic or exact backends")
        raise UsageError(f"{p}: format {fmt!r} is not {kind} vectors; {hint}")
    return VectorsMeta.from_json(obj, str(p))


def sparse_meta_from_parts(space: FeatureSpace, scale: float, encoder: Mapping, pooling: Mapping,
                           parts: Sequence[Mapping], extra: Mapping | None = None) -> VectorsMeta:
    """``meta.json`` of a sparse directory from its parts' statistics (what :meth:`VectorsWriter.finish`
    writes). ``l0`` = active features per document (the seeds' Table 3 remark): before pruning, after
    Top-K/mass pruning, and after quantization (what the index holds)."""
    tot = {k: sum(p[k] for p in parts) for k in _SUMMED}
    n = tot["documents"]
    q = QuantStats(scale)
    q.n_weights, q.n_zeroed, q.sum_abs_error = tot["q_weights"], tot["q_zeroed"], tot["q_sum_abs_error"]
    q.max_rel_error = max((p["q_max_rel_error"] for p in parts), default=0.0)
    written = n - tot["dropped_empty"]
    stats = {
        "documents": written,
        "postings": tot["postings"],
        "mean_terms_per_doc": tot["postings"] / written if written else 0.0,
        "l0": {
            "before_pruning_mean": tot["l0_before"] / n if n else 0.0,
            "after_pruning_mean": tot["l0_after"] / n if n else 0.0,
            "after_quantization_mean": tot["postings"] / n if n else 0.0,
            "before_pruning_max": max((p["max_l0_before"] for p in parts), default=0),
            "after_pruning_max": max((p["max_l0_after"] for p in parts), default=0),
        },
        "empty_after_quantization": tot["dropped_empty"],
        "quantization": q.to_meta(),
        **(extra or {}),
    }
    return VectorsMeta(space.to_meta(), scale, dict(encoder), dict(pooling), stats)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def part_name(key: int | str) -> str:
    """``part-00012`` for 12, ``part-b7`` for "b7": the stem of a part's files."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        if key < 0:
            raise ValueError(f"part key must be >= 0, got {key}")
        return f"part-{int(key):05d}"
    if isinstance(key, str) and _KEY.fullmatch(key):
        return f"part-{key}"
    raise ValueError(f"part key must be an int >= 0 or a string of [A-Za-z0-9_-], got {key!r}")


def _clean_id(docid) -> bool:
    return isinstance(docid, str) and docid.split() == [docid]


def _check_docid(docid) -> str:
    if not _clean_id(docid):
        raise UsageError(f"document id must be a non-empty string without whitespace, got {docid!r}")
    return docid


class _Progress:
    """A part's checkpoint inside ``_state/``: ``{stem}.progress.json`` (written last: the marker) and
    ``{stem}.progress.ids.npy`` (the id hashes so far), plus, for dense parts, the rows so far."""

    def __init__(self, writer: "VectorsWriter", stem: str):
        self.json = writer.state / f"{stem}.progress.json"
        self.ids = writer.state / f"{stem}.progress.ids.npy"
        self.rows = writer.state / f"{stem}.progress.rows.npy"

    def load(self) -> dict | None:
        if not (self.json.is_file() and self.ids.is_file()):
            return None
        try:
            return json.loads(self.json.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None

    def save(self, state: dict, hashes: np.ndarray, rows: np.ndarray | None = None) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.json.unlink()  # the old marker goes first: a kill in between leaves no stale checkpoint
        with atomic_file(self.ids, "wb") as f:
            np.save(f, hashes)
        if rows is not None:
            with atomic_file(self.rows, "wb") as f:
                np.save(f, rows)
        with atomic_file(self.json) as f:
            json.dump(state, f, sort_keys=True)

    def clear(self) -> None:
        for p in (self.json, self.ids, self.rows):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


class _SparsePart:
    """One sparse part being written: JSONL lines to a temporary file, statistics in memory.

    ``resume``: continue from the part's last :meth:`checkpoint` (the temporary file is cut back to
    the checkpoint's length; ``resumed_documents`` says how many documents it held), so a killed run
    loses at most what came after it. The part's bytes do not depend on where checkpoints fell.
    """

    def __init__(self, writer: "VectorsWriter", key, resume: bool = False):
        self.w, self.name = writer, part_name(key) + ".jsonl"
        self.path = writer.tmp / f".{self.name}.tmp"
        self.progress = _Progress(writer, part_name(key))
        self.resume = resume
        self.q = QuantStats(writer.scale)
        self.hashes = IdHashSet()
        self.s = {"documents": 0, "l0_before": 0, "l0_after": 0, "postings": 0, "dropped_empty": 0,
                  "max_l0_before": 0, "max_l0_after": 0}
        self.resumed_documents = 0
        st = self.progress.load() if resume else None
        if st is not None and self.path.is_file() and self.path.stat().st_size >= st["bytes"]:
            with open(self.path, "r+b") as f:
                f.truncate(st["bytes"])
            self.f = open(self.path, "ab")
            self.s = dict(st["stats"])
            self.q.n_weights, self.q.n_zeroed, self.q.max_rel_error, self.q.sum_abs_error = st["quant"]
            self.hashes.extend_hashes(np.load(self.progress.ids))
            self.resumed_documents = self.s["documents"]
        else:
            self.progress.clear()
            self.f = open(self.path, "wb")

    def add(self, docid: str, vec: SparseVector, contents: str = "") -> None:
        """Prune (the writer's topk/mass), quantize and write one document."""
        _check_docid(docid)
        w = vec.weights
        # Two reductions instead of isfinite's array: a NaN fails both comparisons, an infinity the second.
        lo = w.min() if w.size else 0.0
        if w.size and not (lo >= 0 and w.max() <= _F32_MAX):
            raise UsageError(f"document {docid!r}: weight is NaN, infinite or negative")
        if not lo > 0:
            vec = vec.nonzero()
        pruned = self.w.prune(vec)
        ids, q = quantize_vector(pruned, self.w.scale, self.q, where=f"document {docid!r}")
        s = self.s
        s["documents"] += 1
        s["l0_before"] += vec.nnz
        s["l0_after"] += pruned.nnz
        s["max_l0_before"] = max(s["max_l0_before"], vec.nnz)
        s["max_l0_after"] = max(s["max_l0_after"], pruned.nnz)
        self.hashes.add(docid)
        if ids.size == 0:
            # Nothing survives quantization: such a document can never be retrieved by a dot product,
            # and an empty vector is invalid in a vectors directory, so it is left out and counted.
            s["dropped_empty"] += 1
            return
        s["postings"] += int(ids.size)
        self.f.write(self.w.formatter.line(docid, ids, q, contents))

    def add_many(self, docids: Sequence[str], ids: np.ndarray, weights: np.ndarray, bounds: np.ndarray) -> None:
        """:meth:`add` of every document of a block, with the same bytes and statistics: document ``j``
        is ``ids[bounds[j]:bounds[j+1]]`` (int64, increasing) with ``weights[...]`` (taken as float32, as
        :class:`SparseVector` takes them). Pruning, quantization, statistics and formatting run once
        over the block (:func:`~.sparse.prune_segments`, :meth:`~.jsonvector.LineFormatter.lines`)
        instead of ~45 numpy calls per document. A block the batched path does not cover exactly (a
        weight that is zero, negative, NaN or rounds beyond the bound, ids out of order, a bad id)
        goes through :meth:`add` document by document, which also names the culprit."""
        ids = np.asarray(ids, dtype=np.int64)
        w = np.asarray(weights, dtype=np.float32)
        bounds = np.asarray(bounds, dtype=np.int64)
        if bounds.size != len(docids) + 1 or bounds[0] != 0 or bounds[-1] != ids.size or w.shape != ids.shape:
            raise ValueError("add_many: bounds must run from 0 to len(ids), one more than docids")
        n = np.diff(bounds)
        scale = self.w.scale
        keep = None
        if n.size and n.min() > 0 and w.min() > 0 and w.max() <= _F32_MAX and all(map(_clean_id, docids)):
            up = ids[1:] > ids[:-1]
            up[bounds[1:-1] - 1] = True
            if up.all():
                keep = prune_segments(ids, w, bounds, topk=self.w.topk, mass=self.w.mass)
        if keep is not None:
            every = bool(keep.all())
            kept = n if every else np.add.reduceat(keep, bounds[:-1], dtype=np.int64)
            ik, wk = (ids, w.astype(np.float64)) if every else (ids[keep], w[keep].astype(np.float64))
            x = np.rint(wk * scale)
            if not (x.max() <= MAX_IMPACT and x.min() > 0):  # rounded to 0 or beyond the bound: per document
                keep = None
        if keep is None:
            for j, docid in enumerate(docids):
                a, b = bounds[j], bounds[j + 1]
                self.add(docid, SparseVector(ids[a:b], w[a:b]))
            return
        # quantize_vector's statistics over the whole block (the sum of errors is summed per block, not
        # per document: its last bits may differ; it is not part of meta.json).
        err = np.abs(x / scale - wk)
        q = self.q
        q.n_weights += int(wk.size)
        q.max_rel_error = max(q.max_rel_error, float(np.max(err / wk)))
        q.sum_abs_error += float(err.sum())
        s = self.s
        s["documents"] += len(docids)
        s["l0_before"] += int(bounds[-1] - bounds[0])
        s["l0_after"] += int(wk.size)
        s["max_l0_before"] = max(s["max_l0_before"], int(n.max()))
        s["max_l0_after"] = max(s["max_l0_after"], int(kept.max()))
        s["postings"] += int(wk.size)
        for docid in docids:
            self.hashes.add(docid)
        kb = np.zeros(len(docids) + 1, dtype=np.int64)
        np.cumsum(kept, out=kb[1:])
        self.f.write(self.w.formatter.lines(list(docids), ik, x.astype(np.int64), kb))

    def checkpoint(self) -> None:
        """Make what was added so far survive a kill (resumed by ``part(key, resume=True)``)."""
        self.f.flush()
        os.fsync(self.f.fileno())
        q = self.q
        self.progress.save({"bytes": self.f.tell(), "stats": self.s,
                            "quant": [q.n_weights, q.n_zeroed, q.max_rel_error, q.sum_abs_error]},
                           self.hashes.to_array())

    def close(self) -> tuple[dict[str, Path], np.ndarray, dict]:
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()
        q = self.q
        stats = {**self.s, "q_weights": q.n_weights, "q_zeroed": q.n_zeroed, "q_max_rel_error": q.max_rel_error,
                 "q_sum_abs_error": q.sum_abs_error}
        return {self.name: self.path}, self.hashes.to_array(), stats

    def abort(self, exc: BaseException) -> None:
        self.f.close()
        if self.resume and not isinstance(exc, UsageError) and self.progress.load() is not None:
            return  # killed: the checkpoint and the file up to it are what a rerun resumes from
        self.progress.clear()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class _DensePart:
    """One dense part being written: ids and float32 rows, saved as ``.ids.txt`` + ``.npy`` at close
    (checkpoints save the rows so far in ``_state/``)."""

    def __init__(self, writer: "VectorsWriter", key, resume: bool = False):
        self.w, self.stem = writer, part_name(key)
        self.progress = _Progress(writer, self.stem)
        self.resume = resume
        self.ids: list[str] = []
        self.rows: list[np.ndarray] = []
        self.resumed_documents = 0
        st = self.progress.load() if resume else None
        if st is not None and self.progress.rows.is_file():
            self.ids = list(st["ids"])
            self.rows = [np.load(self.progress.rows, allow_pickle=False)]
            self.resumed_documents = len(self.ids)
        else:
            self.progress.clear()

    def add_batch(self, ids: Sequence[str], emb: np.ndarray) -> None:
        emb = np.asarray(emb, dtype=np.float32)
        if emb.ndim != 2 or emb.shape != (len(ids), self.w.dim):
            raise ValueError(f"expected embeddings of shape ({len(ids)}, {self.w.dim}), got {emb.shape}")
        if not np.isfinite(emb).all():
            raise UsageError("embedding holds NaN or infinite values")
        for d in ids:
            _check_docid(d)
        self.ids.extend(ids)
        self.rows.append(emb)

    def _matrix(self) -> np.ndarray:
        return np.concatenate(self.rows) if self.rows else np.zeros((0, self.w.dim), np.float32)

    def checkpoint(self) -> None:
        rows = self._matrix()
        self.rows = [rows]
        self.progress.save({"ids": self.ids}, np.fromiter(map(id_hash, self.ids), np.int64, len(self.ids)), rows)

    def close(self) -> tuple[dict[str, Path], np.ndarray, dict]:
        emb = self._matrix()
        files = {}
        for name in (self.stem + ".ids.txt", self.stem + ".npy"):
            path = self.w.tmp / f".{name}.tmp"
            with open(path, "wb") as f:
                if name.endswith(".npy"):
                    np.save(f, np.ascontiguousarray(emb))
                else:
                    f.write("".join(f"{d}\n" for d in self.ids).encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
            files[name] = path
        return files, np.fromiter(map(id_hash, self.ids), np.int64, len(self.ids)), {"documents": len(self.ids)}

    def abort(self, exc: BaseException) -> None:
        if not (self.resume and not isinstance(exc, UsageError)):
            self.progress.clear()


class VectorsWriter:
    """The one writer of vectors directories, sparse and dense, streaming or by keyed parts, resumable.

    Sparse: give ``space`` (and ``quant_scale``, default :data:`DEFAULT_QUANT_SCALE`; ``topk`` /
    ``mass`` prune each vector before quantization, recorded in the ``l0`` statistics). Dense: give
    ``dim`` (and ``normalized``). ``config``: the caller's settings that decide the output's bytes
    (encode: corpus fingerprint, encoder spec, shard, ...), compared on resume. See the module
    docstring for the two ways of writing.
    """

    def __init__(self, out: str | os.PathLike, *, space: FeatureSpace | None = None,
                 quant_scale: float = DEFAULT_QUANT_SCALE, dim: int | None = None, normalized: bool = True,
                 encoder: Mapping[str, Any] | None = None, pooling: Mapping[str, Any] | None = None,
                 topk: int = 0, mass: float | None = None, part_size: int = DEFAULT_PART_SIZE,
                 config: Mapping[str, Any] | None = None, overwrite: bool = False):
        if (space is None) == (dim is None):
            raise ValueError("give a feature space (sparse vectors) or a dimension (dense), not both")
        if part_size <= 0:
            raise ValueError(f"part_size must be positive, got {part_size}")
        if topk < 0 or (mass is not None and not 0 < mass <= 1):
            raise ValueError(f"topk must be >= 0 and mass in (0, 1], got {topk} and {mass}")
        self.out, self.tmp = Path(out), partial_dir(out)
        self.kind = "sparse" if space is not None else "dense"
        self.space, self.dim, self.normalized = space, (int(dim) if dim is not None else None), bool(normalized)
        if self.kind == "dense" and self.dim <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        self.scale = check_scale(quant_scale) if self.kind == "sparse" else None
        self.encoder, self.pooling = dict(encoder or {}), dict(pooling or {})
        self.topk, self.mass, self.part_size = int(topk), mass, int(part_size)
        self.formatter = LineFormatter(space) if space is not None else None
        check_output_dir(self.out, overwrite=overwrite)
        own = {"state_version": STATE_VERSION, "kind": self.kind, "part_size": self.part_size}
        if self.kind == "sparse":
            own.update(space=space.fingerprint(), quant_scale=self.scale, topk=self.topk, mass=mass)
        else:
            own.update(dim=self.dim)
        self.config = {**own, **dict(config or {})}
        self.config = json.loads(json.dumps(self.config))  # as it reads back from disk (tuples -> lists)
        self.state = self.tmp / STATE_DIR
        self.resumed = self._open_state()
        # Streaming (write / write_dense): the open part and its key.
        self._sink = None
        self._next_key = 0

    # -- state ---------------------------------------------------------------------------------

    def _open_state(self) -> bool:
        cfg_file = self.state / "config.json"
        if self.tmp.exists():
            old = None
            if cfg_file.is_file():
                try:
                    old = json.loads(cfg_file.read_text(encoding="utf-8"))
                except (json.JSONDecodeError, UnicodeDecodeError):
                    old = None
            if old is not None and old != self.config:
                diff = sorted(k for k in set(old) | set(self.config) if old.get(k) != self.config.get(k))
                raise UsageError(f"{self.tmp} holds an unfinished run with other settings ({', '.join(diff)}): rerun "
                                 f"with the same settings to resume, or remove {self.tmp}")
            if old is not None:
                return True
            shutil.rmtree(self.tmp)  # no config: an unfinished run of an older version, or not ours
        self.state.mkdir(parents=True, exist_ok=True)
        with atomic_file(cfg_file) as f:
            json.dump(self.config, f, indent=1, sort_keys=True)
        return False

    def __getstate__(self):
        if self._sink is not None:
            raise TypeError("a VectorsWriter with a part open (streaming write) cannot be pickled")
        return self.__dict__.copy()

    def prune(self, vec: SparseVector) -> SparseVector:
        """The writer's pruning: mass (MILCO) first, then Top-K (the SPLARE paper's pooled setting)."""
        if self.mass is not None:
            vec = vec.mass_prune(self.mass)
        if self.topk > 0:
            vec = vec.topk(self.topk)
        return vec

    def done(self, key: int | str) -> dict | None:
        """Statistics of a completed part, None when it is not (yet) written."""
        p = self.state / f"{part_name(key)}.json"
        if not p.is_file():
            return None
        return json.loads(p.read_text(encoding="utf-8"))

    def completed(self) -> list[str]:
        """Stems (``part-00003``) of every completed part, in reading order."""
        stems = (p.name[:-len(".json")] for p in self.state.glob("part-*.json"))
        return sorted((s for s in stems if "." not in s), key=_natural)  # not the .progress checkpoints

    @contextlib.contextmanager
    def part(self, key: int | str, resume: bool = False):
        """Write the part ``key``: yields a sink with ``add(docid, vec, contents="")`` (sparse) or
        ``add_batch(ids, emb)`` (dense), and ``checkpoint()``; on success the part is moved into place
        and marked complete, replacing an earlier part of the same key; on error nothing of it remains,
        except, with ``resume``, its last checkpoint when the block was interrupted (not a UsageError):
        a later ``part(key, resume=True)`` continues from it (``sink.resumed_documents`` documents
        already in; the caller skips them)."""
        sink = _SparsePart(self, key, resume) if self.kind == "sparse" else _DensePart(self, key, resume)
        try:
            yield sink
        except BaseException as e:
            sink.abort(e)
            raise
        self._commit(key, *sink.close())
        sink.progress.clear()

    def _commit(self, key, files: dict[str, Path], hashes: np.ndarray, stats: dict) -> None:
        stem = part_name(key)
        marker = self.state / f"{stem}.json"
        with contextlib.suppress(FileNotFoundError):
            marker.unlink()  # a part rewritten (retry) is incomplete until its new marker exists
        for name, tmp in files.items():
            os.replace(tmp, self.tmp / name)
        with atomic_file(self.state / f"{stem}.ids.npy", "wb") as f:
            np.save(f, np.asarray(hashes, dtype=np.int64))
        with atomic_file(marker) as f:
            json.dump(stats, f, sort_keys=True)

    # -- streaming -----------------------------------------------------------------------------

    def __enter__(self) -> "VectorsWriter":
        return self

    def _roll(self):
        if self._sink is None:
            self._ctx = self.part(self._next_key)
            self._sink = self._ctx.__enter__()
            self._n_in_part = 0

    def _close_part(self, exc: BaseException | None = None):
        if self._sink is not None:
            ctx, self._sink = self._ctx, None
            if exc is None:
                ctx.__exit__(None, None, None)
                self._next_key += 1
            else:
                with contextlib.suppress(BaseException):
                    ctx.__exit__(type(exc), exc, exc.__traceback__)

    def write(self, docid: str, vector: SparseVector, contents: str = "") -> None:
        """Streaming: add one sparse document (a new part every ``part_size`` documents). A dense
        writer takes ``write(ids, embeddings)`` (:meth:`write_dense`)."""
        if self.kind == "dense":
            return self.write_dense(docid, vector)
        self._roll()
        self._sink.add(docid, vector, contents)
        self._n_in_part += 1
        if self._n_in_part >= self.part_size:
            self._close_part()

    def write_dense(self, ids: Sequence[str], embeddings: np.ndarray) -> None:
        """Streaming: add dense rows (split across parts of ``part_size`` rows)."""
        ids = list(ids)
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape != (len(ids), self.dim):
            raise ValueError(f"expected embeddings of shape ({len(ids)}, {self.dim}), got {emb.shape}")
        s = 0
        while s < len(ids):
            self._roll()
            n = min(self.part_size - self._n_in_part, len(ids) - s)
            self._sink.add_batch(ids[s:s + n], emb[s:s + n])
            self._n_in_part += n
            s += n
            if self._n_in_part >= self.part_size:
                self._close_part()

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            try:
                self._close_part()
                self.finish()
            except UsageError:
                self.discard()
                raise
            return False
        with contextlib.suppress(Exception):
            self._close_part(exc)
        if isinstance(exc, UsageError):
            self.discard()  # bad input: resuming cannot help, leave nothing behind
        return False

    # -- the end -------------------------------------------------------------------------------

    def finish(self, extra_stats: Mapping[str, Any] | None = None, describe_duplicate=None) -> VectorsMeta:
        """Check ids across every completed part, write ``meta.json``, rename ``OUT.partial`` to ``OUT``.

        ``describe_duplicate(hashes) -> str | None``: names a repeated id (encode rescans the corpus for
        ``file:line``); by default the written parts are rescanned. Returns the metadata written.
        """
        stems = self.completed()
        parts = [json.loads((self.state / f"{s}.json").read_text(encoding="utf-8")) for s in stems]
        n = sum(p["documents"] for p in parts)
        if n == 0:
            raise UsageError("no documents were written")
        ids = IdHashSet()
        for s in stems:
            ids.extend_hashes(np.load(self.state / f"{s}.ids.npy"))
        dups = ids.duplicates()
        del ids
        if dups:
            msg = describe_duplicate(dups) if describe_duplicate else None
            if msg is None:
                msg = find_repeated(_iter_written_ids(self.tmp, self.kind), dups)
            raise UsageError(msg or "duplicate document ids (64-bit hash collision)")
        if self.kind == "sparse":
            meta = sparse_meta_from_parts(self.space, self.scale, self.encoder, self.pooling, parts, extra_stats)
        else:
            meta = VectorsMeta(format=DENSE_FORMAT, dim=self.dim, count=n, encoder=self.encoder,
                               normalized=self.normalized, stats=dict(extra_stats or {}))
        self.meta = meta
        with atomic_file(self.tmp / META_FILE) as f:
            json.dump(meta.to_json(), f, indent=1)
        shutil.rmtree(self.state)
        for stale in self.tmp.glob(".part-*.tmp"):  # a part abandoned by a killed worker, never committed
            stale.unlink()
        if self.out.exists():
            shutil.rmtree(self.out)
        os.replace(self.tmp, self.out)
        return meta

    @property
    def stats(self) -> QuantStats:
        """What quantization lost over the whole directory (after :meth:`finish`; sparse only)."""
        q = self.meta.stats["quantization"]
        qs = QuantStats(self.scale)
        qs.n_weights, qs.n_zeroed, qs.max_rel_error = q["weights"], q["zeroed"], q["max_rel_error"]
        return qs

    def discard(self) -> None:
        """Remove ``OUT.partial`` (bad input: resuming cannot help)."""
        shutil.rmtree(self.tmp, ignore_errors=True)


def _iter_written_ids(folder: Path, kind: str) -> Iterator[tuple[str, str]]:
    if kind == "sparse":
        for p in sorted(folder.glob("part-*.jsonl"), key=_natural_path):
            for where, obj in iter_json_lines(p):
                yield obj["id"], where
    else:
        for p in sorted(folder.glob("part-*.ids.txt"), key=_natural_path):
            for n, d in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
                yield d, f"{p}:{n}"


def _natural(stem: str):
    """Reading order of parts: numeric keys by value (part-100000 after part-99999), then the others."""
    key = stem.split("-", 1)[1].split(".", 1)[0]
    return (0, int(key), "") if key.isdigit() else (1, 0, key)


def _natural_path(p: Path):
    return _natural(p.name)


# --------------------------------------------------------------------------------------------
# Reading: one or more directories as one collection
# --------------------------------------------------------------------------------------------


def iter_jsonl_vectors(path: str | os.PathLike, integer: bool = False) -> Iterator[tuple[str, dict, str]]:
    """Stream ``(id, {term: weight}, where)`` from a JSONL file, validating every line
    (:func:`~.jsonvector.check_vector`; ``integer``: stored impacts)."""
    for where, obj in iter_json_lines(path):
        docid = read_id(obj, where)
        if "vector" not in obj:
            raise UsageError(f"{where}: missing 'vector'")
        yield docid, check_vector(obj["vector"], where, integer), where


def _same(metas: list[VectorsMeta], dirs: list[Path], what: str, get) -> None:
    first = get(metas[0])
    for m, d in zip(metas[1:], dirs[1:]):
        if get(m) != first:
            raise UsageError(f"{d} and {dirs[0]} differ in {what}: they are not shards of one collection")



class TermTally:
    """The distinct terms of a stream of ``{term: impact}`` records, each new one checked against the
    feature space (None: a foreign space, any term). Shared by :meth:`Collection.validate` and the
    Lucene builder, which validates while it writes."""

    def __init__(self, space: FeatureSpace | None):
        self.space, self.known = space, set()

    def add(self, vec: Mapping[str, Any], where: str) -> None:
        if self.known.issuperset(vec):  # membership tests only: no set built for a known vocabulary
            return
        new = vec.keys() - self.known
        if self.space is not None:
            try:
                self.space.ids(new)
            except KeyError as e:
                raise UsageError(f"{where}: {e.args[0]}") from None
        self.known |= new

class Collection:
    """One or more vectors directories read as one collection (shards of one ``encode`` run).

    ``meta`` is the merged metadata (the shards' common space, scale, encoder and pooling, summed
    statistics with a ``shards`` list); ``parts`` every part file in reading order (directory by
    directory). Iterating checks ids across all directories (overlapping shards are refused).
    """

    def __init__(self, dirs: list[Path], metas: list[VectorsMeta], parts: list[Path]):
        self.dirs, self.metas, self.parts = dirs, metas, parts
        self.meta = metas[0] if len(metas) == 1 else _merge(dirs, metas)
        self.float_scale: float | None = None  # foreign float weights: quantized at this scale when read

    @property
    def kind(self) -> str:
        return self.meta.kind

    @property
    def foreign(self) -> bool:
        return self.meta.foreign

    @property
    def space(self) -> FeatureSpace:
        return self.meta.space

    @property
    def quant_scale(self) -> float | None:
        return self.meta.quant_scale

    def source(self) -> str | list[str]:
        """What index metadata records as ``source``: the resolved path, a list of them for shards."""
        paths = [str(d.resolve()) for d in self.dirs]
        return paths[0] if len(paths) == 1 else paths

    def __str__(self) -> str:
        return str(self.dirs[0]) if len(self.dirs) == 1 else f"{self.dirs[0]} (+{len(self.dirs) - 1} shards)"

    # -- sparse ----------------------------------------------------------------------------------

    def iter_records(self) -> Iterator[tuple[str, dict[str, int], str]]:
        """``(docid, {term: int impact}, file:line)`` over every part, each line validated
        (integer impacts in ``[0, MAX_IMPACT]``, safe terms)."""
        if self.kind != "sparse":
            raise UsageError(f"{self}: dense vectors have no sparse records")
        if self.float_scale is None:
            for part in self.parts:
                yield from iter_jsonl_vectors(part, integer=True)
            return
        # A foreign folder with float weights, quantized as it is read (open_foreign checked it).
        scale = self.float_scale
        for part in self.parts:
            for docid, vec, where in iter_jsonl_vectors(part):
                terms = list(vec)
                w = np.fromiter((float(x) for x in vec.values()), dtype=np.float64, count=len(terms))
                q = quantize(w, scale)
                if q.size and q.max() > MAX_IMPACT:
                    raise impact_bound_error(q.max().item(), where, "quantized weight")
                out = {t: v for t, v in zip(terms, q.tolist()) if v > 0}
                if out:  # every weight rounded to 0: no term left to index (counted by open_foreign)
                    yield docid, out, where

    def write_single_jsonl(self, path: Path) -> None:
        """Every record in one JsonVectorCollection file (what ``seismic.SeismicIndex.build`` takes):
        part files are concatenated byte for byte; a foreign folder is rewritten record by record
        (its ids may be JSON numbers, its float weights are quantized at ``float_scale``)."""
        with open(path, "wb") as out:
            if not self.foreign:
                for p in self.parts:
                    with open(p, "rb") as f:
                        shutil.copyfileobj(f, out)
                return
            for docid, vec, _ in self.iter_records():
                out.write(orjson.dumps({"id": docid, "contents": "", "vector": vec}) + b"\n")

    def iter_vectors(self) -> Iterator[tuple[str, dict[str, int]]]:
        for docid, vec, _ in self.iter_records():
            yield docid, vec

    def iter_arrays(self) -> Iterator[tuple[str, np.ndarray, np.ndarray, str]]:
        """``(docid, feature ids, int64 impacts, file:line)`` over every part, each line validated as
        :meth:`iter_records` does and its terms checked against the space (ids in file order).

        Fast path: lines exactly as :class:`VectorsWriter` writes them (prefixed spaces) are parsed
        ~1 MB at a time by :meth:`~.jsonvector.LineFormatter.parse_block` -- a structural check and
        numpy's number parser over the bytes, no Python object per term -- at ~8x the speed of orjson
        plus term lookups (a cache miss per term in a 131,072-term dict); a chunk holding any other
        line is taken line by line (:meth:`~.jsonvector.LineFormatter.parse`, checked by formatting
        the result again). Any other line (another tool's spacing,
        contents, a bad weight...) takes the reference path: orjson, :func:`check_vector`, the
        space's term -> id table, whose errors name ``file:line``."""
        if self.kind != "sparse":
            raise UsageError(f"{self}: dense vectors have no sparse records")
        space = self.space
        if self.foreign:
            for docid, vec, where in self.iter_records():
                yield docid, space.ids(vec), np.fromiter(vec.values(), dtype=np.int64, count=len(vec)), where
            return
        fmt = LineFormatter(space)
        for part, n, lines in self.line_blocks():
            many = fmt.parse_many(lines)
            if many is not None:  # the whole chunk as the writer writes it: no line needs a second look
                for i, (docid, ids, q) in enumerate(many, n + 1):
                    yield docid, ids, q, f"{part}:{i}"
                continue
            for i, raw in enumerate(lines, n + 1):
                yield from self._parse_line(fmt, raw, f"{part}:{i}")

    def line_blocks(self, size: int = _READ_CHUNK):
        """``(part, lines before the block, lines)``: every part's raw lines, about ``size`` bytes at a time, for
        the block readers (:meth:`iter_arrays`, the Lucene builder), which number lines ``file:line`` from it."""
        for part in self.parts:
            try:
                f = open(part, "rb")
            except OSError as e:
                raise UsageError(f"cannot read {part}: {e.strerror}") from None
            with f:
                n = 0
                while lines := f.readlines(size):
                    yield part, n, lines
                    n += len(lines)

    def _parse_line(self, fmt: LineFormatter, raw: bytes, where: str):
        """One line of :meth:`iter_arrays`: the writer's own bytes fast, any other through the reference."""
        got = fmt.parse(raw)
        if got is not None:
            yield got[0], got[1], got[2], where
            return
        if raw.isspace() or not raw:
            return
        space = fmt.space  # (self.space builds a new space, and its term table, on every call)
        obj = parse_json_line(raw, where)
        docid = read_id(obj, where)
        if "vector" not in obj:
            raise UsageError(f"{where}: missing 'vector'")
        vec = check_vector(obj["vector"], where, integer=True)
        try:
            ids = space.ids(vec)
        except KeyError as e:
            raise UsageError(f"{where}: {e.args[0]}") from None
        yield docid, ids, np.fromiter(vec.values(), dtype=np.int64, count=len(vec)), where

    def iter_sparse(self) -> Iterator[tuple[str, SparseVector]]:
        """``(docid, SparseVector)`` with the stored impacts dequantized (``q / scale``): quantizing them
        again at the same scale gives back the stored integers exactly."""
        scale = self.quant_scale
        for docid, ids, q, _ in self.iter_arrays():
            yield docid, SparseVector(ids, dequantize(q, scale))

    def validate(self, *, max_id_length: int | None = None, check_terms: bool = True,
                 desc: str = "validating vectors") -> tuple[int, int, int]:
        """One streaming pass an index builder runs before handing part files to Lucene or Seismic:
        every line valid, integer impacts within the bound, no id twice across all directories, and,
        when asked, ids no longer than ``max_id_length`` and terms of the space. Returns
        ``(documents, postings, distinct terms)``."""
        hashes = IdHashSet()
        space = self.space if check_terms and not self.foreign else None
        terms = TermTally(space)
        n_post = 0
        if space is not None:  # terms as ids (iter_arrays checks them against the space): a bitmap of those seen
            seen = np.zeros(space.size, dtype=bool)
            for docid, ids, _, where in progress(self.iter_arrays(), desc=desc, unit="doc"):
                if max_id_length is not None and len(docid) > max_id_length:
                    raise UsageError(f"{where}: document id {docid[:20]!r}... is longer than {max_id_length} "
                                     "characters")
                seen[ids] = True
                hashes.add(docid)
                n_post += ids.size
            self.check_duplicates(hashes)
            return len(hashes), n_post, int(np.count_nonzero(seen))
        for docid, vec, where in progress(self.iter_records(), desc=desc, unit="doc"):
            if max_id_length is not None and len(docid) > max_id_length:
                raise UsageError(f"{where}: document id {docid[:20]!r}... is longer than {max_id_length} characters")
            terms.add(vec, where)
            hashes.add(docid)
            n_post += len(vec)
        self.check_duplicates(hashes)
        return len(hashes), n_post, len(terms.known)

    def check_duplicates(self, hashes: IdHashSet) -> None:
        """Refuse an id seen twice (in one directory, or in two shards), naming both places."""
        dups = hashes.duplicates()
        if not dups:
            return
        msg = find_repeated(self._iter_ids(), dups)
        raise UsageError(msg or f"{self}: duplicate document ids (64-bit hash collision)")

    def _iter_ids(self) -> Iterator[tuple[str, str]]:
        if self.kind == "dense":
            for ids_path, _ in self.dense_parts():
                for n, d in enumerate(ids_path.read_text(encoding="utf-8").splitlines(), 1):
                    yield d, f"{ids_path}:{n}"
        else:
            for part in self.parts:
                for where, obj in iter_json_lines(part):
                    yield str(obj.get("id")), where

    # -- dense -----------------------------------------------------------------------------------

    def dense_parts(self) -> list[tuple[Path, Path]]:
        """``(ids file, npy file)`` pairs in reading order; a part missing either half is an error."""
        out = []
        for npy in self.parts:
            ids = npy.with_name(npy.name[:-len(".npy")] + ".ids.txt")
            if not ids.is_file():
                raise UsageError(f"{npy}: its docids file {ids.name} is missing")
            out.append((ids, npy))
        return out

    def count(self) -> int:
        return sum(m.count for m in self.metas) if self.kind == "dense" else sum(
            m.stats.get("documents", 0) for m in self.metas)

    def iter_dense(self, chunk: int = 65_536) -> Iterator[tuple[list[str], np.ndarray]]:
        """Stream ``(docids, float32 [n, dim])`` in chunks, part by part (memory-mapped, never all in
        RAM); shapes, finiteness, each directory's count and ids across directories are checked."""
        if self.kind != "dense":
            raise UsageError(f"{self}: sparse vectors go to the lucene, seismic or exact backends, not faiss")
        dim = self.meta.dim
        hashes = IdHashSet()
        for d, m in zip(self.dirs, self.metas):
            total = 0
            for ids_path, npy in self.dense_parts():
                if npy.parent != d:
                    continue
                try:
                    ids = ids_path.read_text(encoding="utf-8").splitlines()
                except UnicodeDecodeError:
                    raise UsageError(f"{ids_path}: not valid UTF-8") from None
                try:
                    arr = np.load(npy, mmap_mode="r", allow_pickle=False)  # never unpickle user files
                except ValueError as e:
                    raise UsageError(f"{npy}: not a numpy array file ({e})") from None
                if arr.ndim != 2 or arr.shape[1] != dim or arr.shape[0] != len(ids):
                    raise UsageError(f"{npy}: shape {arr.shape} does not match {len(ids)} ids x dim {dim}")
                for n, docid in enumerate(ids, 1):
                    if docid.split() != [docid]:
                        raise UsageError(f"{ids_path}:{n}: docid {docid!r} is empty or contains whitespace")
                    hashes.add(docid)
                total += len(ids)
                for s in range(0, len(ids), chunk):
                    block = np.ascontiguousarray(arr[s:s + chunk], dtype=np.float32)
                    if not np.isfinite(block).all():
                        raise UsageError(f"{npy}: non-finite values in rows {s}..{s + len(block) - 1}")
                    yield ids[s:s + chunk], block
            if total != m.count:
                raise UsageError(f"{d}: meta.json says {m.count} vectors, the parts hold {total}")
        self.check_duplicates(hashes)


def _merge(dirs: list[Path], metas: list[VectorsMeta]) -> VectorsMeta:
    """The metadata of shards read as one collection: common settings checked, statistics merged."""
    _same(metas, dirs, "kind (sparse/dense)", lambda m: m.kind)
    _same(metas, dirs, "encoder", lambda m: m.encoder)
    if metas[0].kind == "dense":
        _same(metas, dirs, "dimension", lambda m: m.dim)
        _same(metas, dirs, "normalization", lambda m: m.normalized)
        shards = [{"dir": str(d.resolve()), "count": m.count, "shard": m.stats.get("shard")} for d, m in zip(dirs, metas)]
        return VectorsMeta(format=DENSE_FORMAT, dim=metas[0].dim, count=sum(m.count for m in metas),
                           encoder=metas[0].encoder, normalized=metas[0].normalized, stats={"shards": shards})
    _same(metas, dirs, "feature space", lambda m: m.space.fingerprint())
    _same(metas, dirs, "quantization scale", lambda m: m.quant_scale)
    _same(metas, dirs, "pooling", lambda m: m.pooling)
    _same(metas, dirs, "origin (foreign JsonVectorCollection or written by encode)", lambda m: m.foreign)
    st = [m.stats for m in metas]
    docs = [s.get("documents", 0) for s in st]
    inputs = [s.get("documents", 0) + s.get("empty_after_quantization", 0) for s in st]
    n, n_in = sum(docs), sum(inputs)
    post = sum(s.get("postings", 0) for s in st)
    stats: dict[str, Any] = {"documents": n, "postings": post, "mean_terms_per_doc": post / n if n else 0.0}
    if all("l0" in s for s in st):
        l0s = [s["l0"] for s in st]
        stats["l0"] = {k: (sum(l[k] * w for l, w in zip(l0s, inputs)) / n_in if n_in else 0.0) if k.endswith("_mean")
                       else max(l[k] for l in l0s) for k in l0s[0]}
    stats["empty_after_quantization"] = sum(s.get("empty_after_quantization", 0) for s in st)
    if all("quantization" in s for s in st):
        qs = [s["quantization"] for s in st]
        w, z = sum(q["weights"] for q in qs), sum(q["zeroed"] for q in qs)
        stats["quantization"] = {"scale": qs[0]["scale"], "weights": w, "zeroed": z,
                                 "zeroed_fraction": z / w if w else 0.0,
                                 "max_rel_error": max(q["max_rel_error"] for q in qs)}
    stats["shards"] = [{"dir": str(d.resolve()), "documents": s.get("documents", 0), "shard": s.get("shard")}
                       for d, s in zip(dirs, st)]
    m0 = metas[0]
    return VectorsMeta(m0.feature_space, m0.quant_scale, m0.encoder, m0.pooling, stats, foreign=m0.foreign)


def _sparse_parts(d: Path) -> list[Path]:
    parts = sorted(d.glob("part-*.jsonl"), key=_natural_path)
    if not parts:
        raise UsageError(f"{d} holds no part-*.jsonl files")
    return parts


def _dense_npys(d: Path) -> list[Path]:
    parts = sorted(d.glob("part-*.npy"), key=_natural_path)
    if not parts:
        raise UsageError(f"{d} holds no part-*.npy files")
    return parts


FOREIGN_SUFFIXES = (".jsonl", ".json")


def open_collection(dirs: str | os.PathLike | Sequence[str | os.PathLike], *, kind: str | None = None,
                    quant_scale: float | None = None) -> Collection:
    """Open one or more vectors directories as one :class:`Collection` (the one reader).

    Several directories are shards of one collection (``encode --shard-id i --shard-num n``): their
    kind, feature space, quantization scale, encoder and pooling (dense: dimension) must agree, and
    an id in two of them is refused when the collection is read or validated. ``kind`` ("sparse" |
    "dense") refuses the other kind with a hint.

    A directory without ``meta.json`` holding ``*.jsonl`` / ``*.json`` files is a *foreign*
    JsonVectorCollection (another tool's, e.g. Pyserini's encoders): see :func:`open_foreign`;
    ``quant_scale`` then quantizes float weights (integers are taken as they are).
    """
    if isinstance(dirs, (str, os.PathLike)):
        dirs = [dirs]
    paths = [Path(d) for d in dirs]
    if not paths:
        raise UsageError("no vectors directory given")
    seen: dict[Path, Path] = {}
    for p in paths:
        r = p.resolve()
        if r in seen:
            raise UsageError(f"{p} is given twice (as {seen[r]} and {p})")
        seen[r] = p
    for p in paths:
        if not p.is_dir():
            raise UsageError(f"{p} is not a directory" if p.exists() else f"vectors directory {p} does not exist")
    has_meta = [(p / META_FILE).is_file() for p in paths]
    if not any(has_meta):
        if kind == "dense":
            raise UsageError(f"{paths[0]} has no {META_FILE}: not a dense vectors directory written by "
                             "`python -m pyserini_splare.encode`")
        return open_foreign(paths, quant_scale=quant_scale)
    if not all(has_meta):
        missing = paths[has_meta.index(False)]
        raise UsageError(f"{missing} has no {META_FILE} while {paths[has_meta.index(True)]} has one: give shards "
                         "written by one `encode` run")
    metas = [read_meta(p, kind) for p in paths]
    if quant_scale is not None and metas[0].kind == "sparse" and any(m.quant_scale != quant_scale for m in metas):
        raise UsageError(f"{paths[0]} is quantized at scale {metas[0].quant_scale:g}; --quant-scale applies only to "
                         "folders without meta.json (re-quantize with copy_vectors_dir)")
    parts = [f for p, m in zip(paths, metas) for f in (_sparse_parts(p) if m.kind == "sparse" else _dense_npys(p))]
    return Collection(paths, metas, parts)


def open_foreign(dirs: Sequence[Path], quant_scale: float | None = None) -> Collection:
    """A JsonVectorCollection folder this toolkit did not write (no ``meta.json``), e.g. from
    Pyserini's own encoders: ``{"id", "contents", "vector": {term: weight}}`` lines in ``*.jsonl`` /
    ``*.json`` files (read in name order).

    Terms are opaque strings (a :class:`~.spaces.ForeignSpace` of the terms found, sorted); integer
    weights are taken as they are (recorded as scale 1: quantizing a query's integer weights at scale
    1 keeps them); float weights are refused with a hint unless ``quant_scale`` is given, and then
    quantized ``round(w * quant_scale)`` as they are read. One pass reads every file now (validation,
    the term list, the statistics); the metadata says ``"foreign": true``.
    """
    parts = []
    for d in dirs:
        found = sorted(p for p in d.iterdir() if p.is_file() and p.name.endswith(FOREIGN_SUFFIXES)
                       and not p.name.startswith("."))
        if not found:
            raise UsageError(f"{d} has no {META_FILE} and no *.jsonl / *.json files: not a vectors directory")
        parts.extend(found)
    scale = None if quant_scale is None else check_scale(quant_scale)
    terms: set[str] = set()
    n_docs = n_post = 0
    for part in parts:
        for where, obj in iter_json_lines(part):
            read_id(obj, where)
            if "vector" not in obj:
                raise UsageError(f"{where}: missing 'vector'")
            vec = obj["vector"]
            if scale is None:
                if isinstance(vec, dict) and any(type(w) is float for w in vec.values()):
                    check_vector(vec, where)  # a bad term or weight is named first
                    w = next(w for w in vec.values() if type(w) is float)
                    raise UsageError(f"{where}: float weight {w!r} in a folder without {META_FILE}: stored impacts "
                                     "are integers (Lucene truncates floats silently); pass --quant-scale S to "
                                     "quantize them as round(w * S)")
                check_vector(vec, where, integer=True)
            else:
                check_vector(vec, where)
            terms.update(vec)
            n_docs += 1
            n_post += len(vec)
    if n_docs == 0:
        raise UsageError(f"{dirs[0]}: no documents")
    space = ForeignSpace(sorted(terms), name="foreign")
    meta = VectorsMeta(space.to_meta(), 1.0 if scale is None else scale,
                       encoder={"type": "foreign", "source": [str(d.resolve()) for d in dirs]},
                       pooling={}, stats={"documents": n_docs, "postings": n_post,
                                          "mean_terms_per_doc": n_post / n_docs}, foreign=True)
    coll = Collection(list(dirs), [meta], parts)
    coll.float_scale = scale
    return coll


# --------------------------------------------------------------------------------------------
# One-directory helpers (the public API of pyserini_splare.vectors)
# --------------------------------------------------------------------------------------------


def part_files(vectors_dir: str | os.PathLike) -> list[Path]:
    """The sparse part files of one directory, in reading order."""
    return _sparse_parts(Path(vectors_dir))


def iter_vectors(vectors_dir: str | os.PathLike) -> Iterator[tuple[str, dict[str, int]]]:
    """Stream ``(docid, {term: int impact})`` over every part of a vectors directory, validated."""
    return open_collection(vectors_dir, kind="sparse").iter_vectors()


def copy_vectors_dir(src: str | os.PathLike | Sequence, dst: str | os.PathLike, transform=None, *,
                     quant_scale: float | None = None, overwrite: bool = False) -> VectorsMeta:
    """Rewrite a vectors directory through ``transform(SparseVector) -> SparseVector`` (e.g. pruning).

    ``quant_scale``: re-quantize at another scale (None keeps the source's). Re-quantizing at the
    source's scale is exact (stored weights are multiples of 1/scale); at another scale each weight
    becomes ``round(q * s / s_src)`` of its stored integer ``q`` (exact halves may go either way in
    floating point), which can differ by one step from ``round(w * s)`` of the original float.
    """
    coll = open_collection(src, kind="sparse")
    transform = transform or (lambda v: v)
    scale = coll.quant_scale if quant_scale is None else float(quant_scale)
    with VectorsWriter(dst, space=coll.space, quant_scale=scale, encoder=coll.meta.encoder,
                       pooling=coll.meta.pooling, overwrite=overwrite) as w:
        for docid, vec in coll.iter_sparse():
            w.write(docid, transform(vec))
    return read_meta(dst)


def VectorWriter(out_dir: str | os.PathLike, space: FeatureSpace, quant_scale: float = DEFAULT_QUANT_SCALE, *,
                 shard_size: int = DEFAULT_PART_SIZE, encoder: Mapping[str, Any] | None = None,
                 pooling: Mapping[str, Any] | None = None, overwrite: bool = False) -> VectorsWriter:
    """The old streaming writer's signature, kept while its callers move to :class:`VectorsWriter`."""
    return VectorsWriter(out_dir, space=space, quant_scale=quant_scale, part_size=shard_size, encoder=encoder,
                         pooling=pooling, overwrite=overwrite)


def DenseWriter(out_dir: str | os.PathLike, dim: int, encoder: Mapping[str, Any] | None = None, *,
                shard_size: int = 100_000, normalized: bool = True, overwrite: bool = False) -> VectorsWriter:
    """The old dense writer's signature (``write(ids, embeddings)``), kept while its callers move."""
    return VectorsWriter(out_dir, dim=dim, encoder=encoder, part_size=shard_size, normalized=normalized,
                         overwrite=overwrite)


def dense_meta(dim: int, count: int, encoder: Mapping[str, Any], stats: Mapping[str, Any] | None = None,
               normalized: bool = True) -> dict[str, Any]:
    """A dense ``meta.json`` as a dict (the schema of :class:`VectorsMeta`, dense kind)."""
    return VectorsMeta(format=DENSE_FORMAT, dim=dim, count=count, encoder=dict(encoder), normalized=normalized,
                       stats=dict(stats or {})).to_json()


def read_dense_meta(vectors_dir: str | os.PathLike) -> dict[str, Any]:
    """A dense directory's ``meta.json`` as a dict (refuses sparse directories with a hint)."""
    return read_meta(vectors_dir, "dense").to_json()


def iter_dense(vectors_dir: str | os.PathLike, chunk: int = 65_536) -> Iterator[tuple[list[str], np.ndarray]]:
    """Stream ``(ids, float32 [n, dim])`` of one dense directory (:meth:`Collection.iter_dense`)."""
    return open_collection(vectors_dir, kind="dense").iter_dense(chunk)


__all__ = [
    "VECTORS_FORMAT", "DENSE_FORMAT", "META_FILE", "DEFAULT_PART_SIZE", "MAX_IMPACT", "VectorsMeta", "VectorsWriter",
    "Collection", "open_collection", "open_foreign", "read_meta", "part_files", "iter_vectors", "iter_jsonl_vectors",
    "copy_vectors_dir", "dense_meta", "read_dense_meta", "iter_dense", "part_name",
    "sparse_meta_from_parts", "quantize",
]
