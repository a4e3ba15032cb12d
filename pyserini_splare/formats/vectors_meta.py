"""A vectors directory's layout and ``meta.json``: the schema its writer and reader share.

Sparse (``pyserini_splare.vectors/1``): ``part-*.jsonl`` JsonVectorCollection files of integer impacts, read by
Anserini and Seismic as they are; dense (``pyserini_splare.dense/1``): ``part-*.ids.txt`` + ``part-*.npy``.
Layout and keys: docs/vectors.md, "The vectors directory". Writing is :mod:`.vectors_writer`'s, reading
:mod:`.vectors_reader`'s.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .._errors import UsageError
from .quant import QuantStats, check_scale
from .spaces import FeatureSpace

VECTORS_FORMAT = "pyserini_splare.vectors/1"
DENSE_FORMAT = "pyserini_splare.dense/1"
META_FILE = "meta.json"

_KEY = re.compile(r"[A-Za-z0-9_-]+")
# Sparse per-part statistics, summed over parts (the max_* and q_max_rel_error are maxima).
_SUMMED = ("documents", "l0_before", "l0_after", "postings", "dropped_empty", "q_weights", "q_zeroed",
           "q_sum_rel_error")


@dataclass
class VectorsMeta:
    """The ``meta.json`` of a vectors directory (and, copied, of every index built from it; keys: docs/vectors.md).

    ``kind`` is ``"sparse"`` or ``"dense"``; ``foreign`` marks the metadata made up for a folder without ``meta.json``.
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
    tot = {k: sum(p.get(k, 0) for p in parts) for k in _SUMMED}
    n = tot["documents"]
    q = QuantStats(scale)
    q.n_weights, q.n_zeroed = tot["q_weights"], tot["q_zeroed"]
    q.max_rel_error = max((p["q_max_rel_error"] for p in parts), default=0.0)
    q.sum_rel_error = tot["q_sum_rel_error"]
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


def merge_metas(dirs: list[Path], metas: list[VectorsMeta]) -> VectorsMeta:
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
        if all("mean_rel_error" in q for q in qs) and w > z:  # the mean over kept weights, weighted by them
            mean = sum(q["mean_rel_error"] * (q["weights"] - q["zeroed"]) for q in qs) / (w - z)
            stats["quantization"]["mean_rel_error"] = float(f"{mean:.4g}")
    stats["shards"] = [{"dir": str(d.resolve()), "documents": s.get("documents", 0), "shard": s.get("shard")}
                       for d, s in zip(dirs, st)]
    m0 = metas[0]
    return VectorsMeta(m0.feature_space, m0.quant_scale, m0.encoder, m0.pooling, stats, foreign=m0.foreign)


def _same(metas: list[VectorsMeta], dirs: list[Path], what: str, get) -> None:
    first = get(metas[0])
    for m, d in zip(metas[1:], dirs[1:]):
        if get(m) != first:
            raise UsageError(f"{d} and {dirs[0]} differ in {what}: they are not shards of one collection")


def part_name(key: int | str) -> str:
    """``part-00012`` for 12, ``part-b7`` for "b7": the stem of a part's files."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        if key < 0:
            raise ValueError(f"part key must be >= 0, got {key}")
        return f"part-{int(key):05d}"
    if isinstance(key, str) and _KEY.fullmatch(key):
        return f"part-{key}"
    raise ValueError(f"part key must be an int >= 0 or a string of [A-Za-z0-9_-], got {key!r}")


def part_order(stem: str):
    """Reading order of parts: numeric keys by value (part-100000 after part-99999), then the others."""
    key = stem.split("-", 1)[1].split(".", 1)[0]
    return (0, int(key), "") if key.isdigit() else (1, 0, key)


def parts_in(folder: Path, pattern: str) -> list[Path]:
    """The files of ``folder`` matching ``pattern`` (``part-*.jsonl``), in reading order."""
    return sorted(folder.glob(pattern), key=lambda p: part_order(p.name))
