"""Writing a vectors directory (layout and ``meta.json``: :mod:`.vectors_meta`): :class:`VectorsWriter`,
the one writer.

Streaming (``w.write``), resumable parts by key (``w.part(key)``, atomic, checkpointed), resuming under the
same settings and writing from several processes (the writer pickles): docs/vectors.md, "Writing".
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .._errors import UsageError
from .._outputs import atomic_file, check_output_dir, partial_dir
from .idhash import IdHashSet, find_repeated, id_hash
from .jsonvector import LineFormatter
from .quant import DEFAULT_QUANT_SCALE, MAX_IMPACT, QuantStats, check_scale, dequantize, quantize_vector
from .spaces import FeatureSpace
from .sparse import SparseVector, prune, prune_segments
from .vectors_meta import (DENSE_FORMAT, META_FILE, VectorsMeta, part_name, part_order, parts_in, read_meta,
                           sparse_meta_from_parts)
from .vectors_reader import iter_part_ids, open_collection

STATE_DIR = "_state"
STATE_VERSION = 4  # 3: no unused sum of absolute errors; 4: the sum of relative errors (for the mean)

# Documents per part file, encode's --part-size default (Anserini indexes one part per thread: docs/vectors.md,
# "Writing").
DEFAULT_PART_SIZE = 10_000
_F32_MAX = float(np.finfo(np.float32).max)  # SparseVector weights are float32


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

    ``resume`` continues from the last :meth:`checkpoint` (``resumed_documents`` says how many it held); the
    part's bytes do not depend on where checkpoints fell.
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
            self.q.n_weights, self.q.n_zeroed, self.q.max_rel_error, self.q.sum_rel_error = st["quant"]
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
        is ``ids[bounds[j]:bounds[j+1]]`` (int64, increasing) with ``weights[...]`` (taken as float32). A block
        the batched path does not cover exactly goes through :meth:`add` (docs/vectors.md, "Speed")."""
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
        # quantize_vector's statistics over the whole block.
        rel = np.abs(x / scale - wk) / wk
        q = self.q
        q.n_weights += int(wk.size)
        q.max_rel_error = max(q.max_rel_error, float(np.max(rel)))
        q.sum_rel_error += float(np.sum(rel))
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
                            "quant": [q.n_weights, q.n_zeroed, q.max_rel_error, q.sum_rel_error]},
                           self.hashes.to_array())

    def close(self) -> tuple[dict[str, Path], np.ndarray, dict]:
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()
        q = self.q
        stats = {**self.s, "q_weights": q.n_weights, "q_zeroed": q.n_zeroed, "q_max_rel_error": q.max_rel_error,
                 "q_sum_rel_error": q.sum_rel_error}
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

    Sparse: give ``space`` (and ``quant_scale``; ``topk`` / ``mass`` prune before quantization). Dense: give
    ``dim`` (and ``normalized``). ``config``: the caller's settings that decide the output's bytes, compared on
    resume. The two ways of writing: docs/vectors.md, "Writing".
    """

    def __init__(self, out: str | os.PathLike, space: FeatureSpace | None = None,
                 quant_scale: float = DEFAULT_QUANT_SCALE, *, dim: int | None = None, normalized: bool = True,
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
        return prune(vec, self.topk, self.mass)

    def done(self, key: int | str) -> dict | None:
        """Statistics of a completed part, None when it is not (yet) written."""
        p = self.state / f"{part_name(key)}.json"
        if not p.is_file():
            return None
        return json.loads(p.read_text(encoding="utf-8"))

    def completed(self) -> list[str]:
        """Stems (``part-00003``) of every completed part, in reading order."""
        stems = (p.name[:-len(".json")] for p in self.state.glob("part-*.json"))
        return sorted((s for s in stems if "." not in s), key=part_order)  # not the .progress checkpoints

    @contextlib.contextmanager
    def part(self, key: int | str, resume: bool = False):
        """Write the part ``key``: yields a sink with ``add(docid, vec, contents="")`` (sparse) or
        ``add_batch(ids, emb)`` (dense), and ``checkpoint()``. On success the part replaces any earlier part of
        the key; on error nothing of it remains but, with ``resume``, its last checkpoint (docs/vectors.md).
        """
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
        """Streaming: add one sparse document (a new part every ``part_size`` documents)."""
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
                pattern = "part-*.jsonl" if self.kind == "sparse" else "part-*.ids.txt"
                msg = find_repeated(iter_part_ids(parts_in(self.tmp, pattern), self.kind), dups)
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
        qs.sum_rel_error = q.get("mean_rel_error", 0.0) * (qs.n_weights - qs.n_zeroed)
        return qs

    def discard(self) -> None:
        """Remove ``OUT.partial`` (bad input: resuming cannot help)."""
        shutil.rmtree(self.tmp, ignore_errors=True)


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
        for docid, ids, q, _ in coll.iter_arrays():
            w.write(docid, transform(SparseVector(ids, dequantize(q, coll.quant_scale))))
    return read_meta(dst)
