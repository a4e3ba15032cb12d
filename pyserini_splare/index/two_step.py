"""Indexes for two-step search: a first-stage index of pruned documents plus a forward store of the full ones.

``index --prune-docs SPEC`` builds the backend's index from pruned vectors; ``--forward-store`` writes the full
ones into ``INDEX/forward`` (docs/indexing.md). Nothing half-written: the store is written beside the index
and checked, the index built, the store moved in and the metadata updated; a failure removes what was made.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Sequence

from .._console import progress
from .._errors import UsageError
from .._outputs import check_output_dir
from ..backends import get_backend
from ..formats.forward_store import (FORWARD_DIR, collection_digest, index_forward_record, write_forward_store)
from ..formats.index_meta import write_index_meta
from ..formats.sparse import SparseVector, parse_pruning
from ..formats.vectors_reader import open_collection
from ..formats.vectors_writer import VectorsWriter


def prune_collection(inputs: Sequence[str], out: str | os.PathLike, spec: str) -> None:
    """Write ``inputs`` (one collection, possibly several shard folders) pruned by ``spec`` to ``out``,
    at the source's scale (stored impacts are multiples of 1/scale: re-quantizing is exact)."""
    from ..formats.quant import dequantize

    topk, mass = _pruning(spec)
    coll = open_collection(list(inputs), kind="sparse")
    pooling = {**dict(coll.meta.pooling), "topk": topk, "mass": mass}
    with VectorsWriter(out, space=coll.space, quant_scale=coll.quant_scale, topk=topk, mass=mass,
                       encoder=dict(coll.meta.encoder), pooling=pooling) as w:
        for docid, ids, q, _ in progress(coll.iter_arrays(), desc=f"prune documents ({spec})", unit="doc"):
            w.write(docid, SparseVector(ids, dequantize(q, coll.quant_scale)))


def _pruning(spec: str) -> tuple[int, float | None]:
    try:
        return parse_pruning(spec)
    except ValueError as e:
        raise UsageError(f"--prune-docs: {e}") from None


def build_two_step(backend: str, inputs: Sequence[str], index: str, *, threads: int = 1, overwrite: bool = False,
                   prune_docs: str | None = None, forward_store: bool | str = False, **options) -> dict[str, Any]:
    """Build ``backend``'s index of ``inputs`` pruned by ``prune_docs`` (None: as they are) and, when
    ``forward_store`` is true (or a vectors directory of the full vectors), the forward store. Returns the
    index metadata."""
    from .backends import build_index

    b = get_backend(backend)
    if b.query_kind != "sparse":
        raise UsageError(f"--prune-docs/--forward-store take sparse vectors; a {b.name} index is searched "
                         f"with {b.query_kind} queries")
    b.check_options("build", options, complete=False)
    if prune_docs is not None:
        _pruning(prune_docs)
    inputs = [os.fspath(p) for p in ([inputs] if isinstance(inputs, (str, os.PathLike)) else inputs)]
    index_path = Path(index)
    check_output_dir(index_path, overwrite=overwrite)
    full = [os.fspath(forward_store)] if isinstance(forward_store, (str, os.PathLike)) else inputs
    store_tmp = index_path.with_name(index_path.name + "." + FORWARD_DIR)
    if store_tmp.exists() and forward_store:  # not ours to delete unless asked (a killed build leaves it)
        if not overwrite:
            raise UsageError(f"{store_tmp} already exists (left by an interrupted build? remove it or pass --overwrite)")
        shutil.rmtree(store_tmp)
    made_index = False
    work = None
    try:
        record = None
        if forward_store:
            full_coll = open_collection(full, kind="sparse")
            index_coll = open_collection(inputs, kind="sparse")
            if full_coll.space.fingerprint() != index_coll.space.fingerprint():
                raise UsageError(f"--forward-store {full[0]}: feature space {full_coll.space!r} differs from the "
                                 f"indexed vectors' {index_coll.space!r}")
            if full_coll.quant_scale != index_coll.quant_scale:
                raise UsageError(f"--forward-store {full[0]}: quantization scale {full_coll.quant_scale:g} differs "
                                 f"from the indexed vectors' {index_coll.quant_scale:g} (queries are quantized once, "
                                 "at the index's scale)")
            manifest = write_forward_store(
                ((d, ids, q) for d, ids, q, _ in progress(full_coll.iter_arrays(), desc="forward store", unit="doc")),
                store_tmp, full_coll.space, full_coll.quant_scale, overwrite=True, source=full_coll.source())
            if full != inputs:  # another folder: its documents must be the indexed ones
                n, digest = collection_digest(d for d, _, _, _ in progress(
                    index_coll.iter_arrays(), desc="checking indexed ids", unit="doc"))
                if (n, digest) != (manifest["documents"], manifest["docid_digest"]):
                    raise UsageError(f"--forward-store {full[0]} holds other documents than --input "
                                     f"({manifest['documents']} vs {n} documents, or different ids)")
            record = {**index_forward_record(manifest), "source": manifest.get("source")}
        build_inputs = inputs
        if prune_docs is not None:
            work = tempfile.mkdtemp(prefix=".prune-", dir=index_path.parent if str(index_path.parent) else ".")
            prune_collection(inputs, Path(work) / "vectors", prune_docs)
            build_inputs = [str(Path(work) / "vectors")]
        meta = build_index(b.name, build_inputs, index, threads=threads, overwrite=overwrite, **options)
        made_index = True
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
            work = None
        fields = {k: v for k, v in meta.items() if k not in ("format", "backend")}
        fields["source"] = inputs if len(inputs) > 1 else inputs[0]
        fields["first_stage"] = {"prune_docs": prune_docs}
        if record is not None:
            os.replace(store_tmp, index_path / FORWARD_DIR)
            fields["forward"] = record
        return write_index_meta(index_path, b.name, **fields)
    except BaseException:
        if made_index:
            shutil.rmtree(index_path, ignore_errors=True)
        raise
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
        if forward_store and store_tmp.exists():
            shutil.rmtree(store_tmp, ignore_errors=True)


__all__ = ["build_two_step", "prune_collection"]
