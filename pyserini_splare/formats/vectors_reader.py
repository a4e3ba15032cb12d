"""Reading vectors directories: one or more of them as one :class:`Collection` (the one reader).

Shard directories read as one collection, a folder without ``meta.json`` as a foreign one; builders use
:meth:`Collection.iter_arrays` (no Python object per term), display :meth:`Collection.iter_records`
(docs/vectors.md, "Reading").
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import orjson

from .._console import progress
from .._errors import UsageError
from .idhash import IdHashSet, find_repeated
from .jsonl import iter_json_lines, open_input, parse_json_line
from .jsonvector import LineFormatter, check_record, iter_jsonl_vectors
from .spaces import FeatureSpace
from .vectors_foreign import iter_quantized, scan_foreign
from .vectors_meta import META_FILE, VectorsMeta, merge_metas, parts_in, read_meta

# Bytes of lines read (and parsed by numpy) at a time: ~170 400-term documents.
_READ_CHUNK = 1 << 20


class TermTally:
    """The distinct terms of a stream of ``{term: impact}`` records, each new one checked against the
    feature space (None: a foreign space, any term), for a builder that validates records while it
    writes (Lucene's)."""

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

    ``meta``: the merged metadata (summed statistics with a ``shards`` list); ``parts``: every part file in reading
    order. Iterating checks ids across all directories (overlapping shards are refused).
    """

    def __init__(self, dirs: list[Path], metas: list[VectorsMeta], parts: list[Path],
                 float_scale: float | None = None):
        self.dirs, self.metas, self.parts = dirs, metas, parts
        self.meta = metas[0] if len(metas) == 1 else merge_metas(dirs, metas)
        self.float_scale = float_scale  # foreign float weights: quantized at this scale when read

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
        (integer impacts in ``[0, MAX_IMPACT]``, safe terms): the read for display and inspection."""
        if self.kind != "sparse":
            raise UsageError(f"{self}: dense vectors have no sparse records")
        if self.float_scale is not None:  # a foreign folder with float weights
            yield from iter_quantized(self.parts, self.float_scale)
            return
        for part in self.parts:
            yield from iter_jsonl_vectors(part, integer=True)

    def records_on_disk(self):
        """``{docid: {term: int impact}}`` read from the part files on demand (each line validated as
        :meth:`iter_records` does when it is read; :class:`~.jsonl.JsonlRecords`: an offsets table in
        memory); None for a foreign folder, whose float weights are quantized as a whole."""
        from .jsonl import JsonlRecords, read_id

        if self.kind != "sparse":
            raise UsageError(f"{self}: dense vectors have no sparse records")
        if self.float_scale is not None:
            return None
        return JsonlRecords(self.parts, read_id, lambda obj, where: check_record(obj, where, integer=True)[1])

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

    def iter_arrays(self) -> Iterator[tuple[str, np.ndarray, np.ndarray, str]]:
        """``(docid, feature ids, int64 impacts, file:line)`` over every part, each line validated: the read
        for index builders.

        Lines exactly as :class:`~.vectors_writer.VectorsWriter` writes them are parsed ~1 MB at a time by
        :meth:`~.jsonvector.LineFormatter.parse_block` (~8x orjson plus term lookups); a chunk holding any other line
        goes line by line, and a line the fast parsers refuse takes orjson and :func:`~.jsonvector.check_record`,
        whose errors name ``file:line``.
        """
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
            with open_input(part) as f:
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
        docid, vec = check_record(parse_json_line(raw, where), where, integer=True)
        try:
            ids = space.ids(vec)
        except KeyError as e:
            raise UsageError(f"{where}: {e.args[0]}") from None
        yield docid, ids, np.fromiter(vec.values(), dtype=np.int64, count=len(vec)), where

    def validate(self, *, max_id_length: int | None = None, desc: str = "validating vectors") -> tuple[int, int, int]:
        """One streaming pass an index builder runs before handing part files to Lucene or Seismic:
        every line valid, integer impacts within the bound, terms of the space, no id twice across
        all directories, and, when asked, ids no longer than ``max_id_length``. Returns
        ``(documents, postings, distinct terms)``."""
        hashes = IdHashSet()
        seen = np.zeros(self.space.size, dtype=bool)  # terms as ids (iter_arrays checks them against the space)
        n_post = 0
        for docid, ids, _, where in progress(self.iter_arrays(), desc=desc, unit="doc"):
            if max_id_length is not None and len(docid) > max_id_length:
                raise UsageError(f"{where}: document id {docid[:20]!r}... is longer than {max_id_length} characters")
            seen[ids] = True
            hashes.add(docid)
            n_post += ids.size
        self.check_duplicates(hashes)
        return len(hashes), n_post, int(np.count_nonzero(seen))

    def check_duplicates(self, hashes: IdHashSet) -> None:
        """Refuse an id seen twice (in one directory, or in two shards), naming both places."""
        dups = hashes.duplicates()
        if not dups:
            return
        msg = find_repeated(self._iter_ids(), dups)
        raise UsageError(msg or f"{self}: duplicate document ids (64-bit hash collision)")

    def _iter_ids(self) -> Iterator[tuple[str, str]]:
        return iter_part_ids([i for i, _ in self.dense_parts()] if self.kind == "dense" else self.parts, self.kind)

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


def open_collection(dirs: str | os.PathLike | Sequence[str | os.PathLike], *, kind: str | None = None,
                    quant_scale: float | None = None) -> Collection:
    """Open one or more vectors directories as one :class:`Collection` (the one reader).

    Shards of one collection must agree on kind, feature space, scale, encoder and pooling (dense: dimension);
    ``kind`` ("sparse" | "dense") refuses the other kind with a hint. A folder without ``meta.json`` is a foreign
    JsonVectorCollection (:mod:`.vectors_foreign`), whose float weights ``quant_scale`` quantizes.
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
        meta, parts, scale = scan_foreign(paths, quant_scale)
        return Collection(paths, [meta], parts, scale)
    if not all(has_meta):
        missing = paths[has_meta.index(False)]
        raise UsageError(f"{missing} has no {META_FILE} while {paths[has_meta.index(True)]} has one: give shards "
                         "written by one `encode` run")
    metas = [read_meta(p, kind) for p in paths]
    if quant_scale is not None and metas[0].kind == "sparse" and any(m.quant_scale != quant_scale for m in metas):
        raise UsageError(f"{paths[0]} is quantized at scale {metas[0].quant_scale:g}; --quant-scale applies only to "
                         "folders without meta.json (re-quantize with copy_vectors_dir)")
    parts = [f for p, m in zip(paths, metas) for f in _parts(p, m.kind)]
    return Collection(paths, metas, parts)


def iter_part_ids(parts: Sequence[Path], kind: str) -> Iterator[tuple[str, str]]:
    """``(docid, file:line)`` of part files (sparse ``.jsonl``, dense ``.ids.txt``): what names a repeated id."""
    for part in parts:
        if kind == "dense":
            for n, d in enumerate(part.read_text(encoding="utf-8").splitlines(), 1):
                yield d, f"{part}:{n}"
        else:
            for where, obj in iter_json_lines(part):
                yield str(obj.get("id")), where


def _parts(d: Path, kind: str) -> list[Path]:
    pattern = "part-*.jsonl" if kind == "sparse" else "part-*.npy"
    parts = parts_in(d, pattern)
    if not parts:
        raise UsageError(f"{d} holds no {pattern} files")
    return parts


def iter_vectors(dirs: str | os.PathLike | Sequence[str | os.PathLike]) -> Iterator[tuple[str, dict[str, int]]]:
    """``(docid, {term: int impact})`` over one or more sparse vectors directories, validated
    (:meth:`Collection.iter_records` without the ``file:line``)."""
    for docid, vec, _ in open_collection(dirs, kind="sparse").iter_records():
        yield docid, vec
