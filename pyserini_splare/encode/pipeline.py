"""The encode stage's run loop: a corpus (or a vectors directory to prune) -> a vectors directory.

Documents stream through the encoder part by part (shards, resumable parts, checkpoints within a part,
windows encoded longest first: docs/encoders.md, "Resuming"); the writing, resuming and pruning belong to
:class:`~pyserini_splare.formats.vectors_writer.VectorsWriter`.
"""

from __future__ import annotations

import hashlib
import itertools
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from .._console import progress
from .._errors import UsageError
from ..formats.idhash import find_repeated
from ..formats.quant import dequantize
from ..formats.vectors_meta import VectorsMeta
from ..formats.vectors_reader import open_collection
from ..formats.vectors_writer import VectorsWriter

# Length sorting happens inside windows of this many batches: streaming memory stays bounded,
# and within a window the batches pad to nearly their own length.
WINDOW_BATCHES = 50


def shard_filter(items: Iterable, shard_id: int, shard_num: int) -> Iterator:
    """Every ``shard_num``-th item starting at ``shard_id``: needs no corpus size, so it streams, and shards
    get equal shares of long and short documents wherever they sit in the corpus."""
    return itertools.islice(items, shard_id, None, shard_num)


def text_source(corpus: str, announce: bool = False) -> Iterator[tuple[str, str, str]]:
    """``(docid, text, file:line)`` of a corpus (:func:`pyserini_splare.corpus.open_corpus`); ``announce``
    says on stderr which files a corpus folder stands for."""
    from ..corpus import open_corpus

    for d in open_corpus(corpus, announce=announce):
        yield d.id, d.text, d.where


def corpus_fingerprint(corpus: str) -> dict:
    """What identifies the input for resuming: path, size and mtime (cheap; not a content hash)."""
    from ..corpus import corpus_files

    p = Path(corpus)
    if not p.exists():
        return {"corpus": corpus}
    files = corpus_files(p) if p.is_dir() else [p]  # a folder's JSONL files, subfolders included
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(p) if p.is_dir() else f.name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return {"corpus": str(p.resolve()), "corpus_stat": h.hexdigest()[:16]}


def peek(source: Iterable) -> Iterator:
    """Read the first item now (so a bad corpus fails before loading a model), then the rest."""
    it = iter(source)
    try:
        first = next(it)
    except StopIteration:
        return iter(())
    return _chain(first, it)


def _windows(it: Iterator, size: int) -> Iterator[list]:
    buf = []
    for x in it:
        buf.append(x)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


@dataclass
class Settings:
    shard_id: int = 0
    shard_num: int = 1
    part_size: int = 10_000
    batch_size: int = 32
    sleep: float = 0.0  # test-only pause after each batch (PYSERINI_SPLARE_TEST_SLEEP; see encode/__main__)
    # Checkpoint the part being written at the first window boundary after this many seconds, so that
    # a kill loses at most about this much work (plus one window) even inside a 10,000-document part.
    checkpoint_seconds: float = 60.0
    # Counts the corpus (None when unknown) for the progress bar's total and ETA; run in a background
    # thread so that encoding starts at once (a line scan of a large corpus takes a while).
    count: Callable[[], int | None] | None = None


def run_parts(writer: VectorsWriter, source: Iterable, settings: Settings,
              encode: Callable[[list], list] | None = None, desc: str = "encode") -> list[dict]:
    """Stream the shard's items part by part into ``writer``; completed parts are skipped (resume).

    ``source`` yields ``(docid, payload, where)``: payload a text when ``encode`` is given
    (``encode(texts) -> vectors``, a SparseVector each or a float32 matrix for dense), else
    (``--prune-from``) ``(ids, impacts)`` as stored at the writer's scale, written a window at a time
    (:meth:`add_many`: pruning happens in the writer). Returns each part's statistics.
    """
    stream = shard_filter(source, settings.shard_id, settings.shard_num)
    parts: list[dict] = []
    window = window_size(settings)
    dense = writer.kind == "dense"
    k = 0
    if writer.resumed:  # say so: the first parts are then read, not encoded, and go by fast
        print(f"resuming the interrupted run in {writer.tmp}", file=sys.stderr)
    with progress(desc=desc, unit="doc") as bar:
        if settings.count is not None:
            _count_in_background(bar, settings)
        while True:
            chunk_iter = itertools.islice(stream, settings.part_size)
            done = writer.done(k)
            if done is not None:
                n = sum(1 for _ in chunk_iter)  # skip (read, not encoded)
                if n == 0:
                    break
                if n != done["documents"]:
                    raise UsageError(f"{writer.tmp}: part {k} held {done['documents']} documents but the corpus "
                                     f"now gives {n}: the corpus changed since the interrupted run")
                parts.append(done)
                bar.update(n)
                k += 1
                continue
            first = next(chunk_iter, None)
            if first is None:
                break
            chunk_iter = _chain(first, chunk_iter)
            with writer.part(k, resume=True) as part:
                if part.resumed_documents:  # checkpointed by a killed run: read, not encoded
                    n = sum(1 for _ in itertools.islice(chunk_iter, part.resumed_documents))
                    if n != part.resumed_documents:
                        raise UsageError(f"{writer.tmp}: part {k} was checkpointed at {part.resumed_documents} "
                                         f"documents but the corpus now gives {n}: the corpus changed")
                    bar.update(n)
                last = time.monotonic()
                for win in _windows(chunk_iter, window):
                    if encode is None:
                        part.add_many(*_block(win, writer.scale))
                        bar.update(len(win))
                    else:
                        write_window(part, [d for d, _, _ in win], _encode_window(win, encode, settings, bar), dense)
                    if settings.checkpoint_seconds and time.monotonic() - last >= settings.checkpoint_seconds:
                        part.checkpoint()
                        last = time.monotonic()
            parts.append(writer.done(k))
            k += 1
    return parts


def _block(win: list, scale: float) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """A window of ``(docid, (ids, impacts), where)`` as one block for ``add_many``, the impacts
    dequantized as ``copy_vectors_dir`` does (``q / scale``, then float32 in the writer)."""
    bounds = np.zeros(len(win) + 1, dtype=np.int64)
    np.cumsum([ids.size for _, (ids, _), _ in win], out=bounds[1:])
    ids = np.concatenate([ids for _, (ids, _), _ in win])
    q = np.concatenate([q for _, (_, q), _ in win])
    return [d for d, _, _ in win], ids, dequantize(q, scale), bounds


def _chain(first, rest: Iterator) -> Iterator:
    yield first
    yield from rest


def _count_in_background(bar, settings: Settings) -> None:
    """Give ``bar`` its total (this shard's share of the corpus), hence an ETA, once the corpus is counted."""
    def work():
        try:
            n = settings.count()
        except Exception:  # noqa: BLE001 -- a total is a nicety; reading the corpus reports real problems
            return
        if n is not None:
            bar.total = shard_share(n, settings)
            bar.refresh()

    threading.Thread(target=work, name="count-corpus", daemon=True).start()


def encode_texts(texts: list[str], encode: Callable[[list], list], batch_size: int,
                 after_batch: Callable[[int], None] | None = None) -> list:
    """``encode`` over ``texts`` in batches of ``batch_size``, longest first within the list (stable): batches
    pad to nearly their own length. Results in input order; ``after_batch(n)`` after each batch of n.
    The single process and every Ray actor encode a window this way, so their vectors are equal."""
    from .batching import length_sorted_batches

    results: list = [None] * len(texts)
    for idx in length_sorted_batches([len(t) for t in texts], batch_size):
        for i, r in zip(idx, encode([texts[i] for i in idx])):
            results[i] = r
        if after_batch is not None:
            after_batch(len(idx))
    return results


def write_window(part, ids: list[str], results: list, dense: bool) -> None:
    """A window's encoded results into the part being written."""
    if dense:
        part.add_batch(ids, np.stack(results))
    else:
        for docid, vec in zip(ids, results):
            part.add(docid, vec)


def window_size(settings: Settings) -> int:
    return max(settings.batch_size * WINDOW_BATCHES, 1)


def _encode_window(win: list, encode, settings: Settings, bar) -> list:
    def after(n):
        bar.update(n)
        if settings.sleep:
            time.sleep(settings.sleep)

    return encode_texts([w[1] for w in win], encode, settings.batch_size, after)


def shard_share(n: int, settings: Settings) -> int:
    """This shard's number of documents in a corpus of ``n``."""
    return len(range(settings.shard_id, n, settings.shard_num))


def describe_encoder(encoder, topk: int = 0, mass: float | None = None) -> dict[str, Any]:
    """What the writer needs to know of an encoder: dense (and its dimension) or sparse (its feature space
    and ``meta.json``'s pooling), and its spec. Pruning applies to sparse vectors only."""
    from .base import DenseEncoder

    if isinstance(encoder, DenseEncoder):
        if topk or mass is not None:
            raise UsageError("--topk/--mass prune sparse vectors; a dense encoder was given")
        return {"dense": True, "dim": int(encoder.dim), "spec": encoder.spec()}
    return {"dense": False, "space": encoder.space, "spec": encoder.spec(), "pooling": pooling_meta(encoder, topk, mass)}


def open_writer(out: Path, info: dict[str, Any], encoder_spec: str, settings: Settings, *, config: dict[str, Any],
                quant_scale: float, topk: int = 0, mass: float | None = None, overwrite: bool = False) -> VectorsWriter:
    """The vectors directory's writer for an encoder described by :func:`describe_encoder` (one set-up for the
    single process and the Ray driver, so either resumes the other's run)."""
    common = dict(config=dict(config), overwrite=overwrite, part_size=settings.part_size,
                  encoder={"spec": encoder_spec, **info["spec"]})
    if info["dense"]:
        return VectorsWriter(out, dim=info["dim"], **common)
    return VectorsWriter(out, space=info["space"], quant_scale=quant_scale, topk=topk, mass=mass,
                         pooling=info["pooling"], **common)


def finish_encode(writer: VectorsWriter, corpus: str, settings: Settings) -> VectorsMeta:
    """Check that the shard held documents, then finish the directory (an id twice is named by file:line)."""
    parts = [writer.done(int(s.rsplit("-", 1)[1])) for s in writer.completed()]
    _check_some(parts, settings)

    def describe(hashes):
        items = shard_filter(text_source(corpus), settings.shard_id, settings.shard_num)
        return find_repeated(((d, w) for d, _, w in items), hashes)

    return writer.finish(_extra(settings, corpus), describe_duplicate=describe)


def encode_to_dir(out: Path, corpus: str, encoder, encoder_spec: str, settings: Settings, *, config: dict[str, Any],
                  quant_scale: float, topk: int = 0, mass: float | None = None, overwrite: bool = False,
                  source: Iterable | None = None) -> tuple[VectorsMeta, VectorsWriter]:
    """Encode ``corpus`` with ``encoder`` into the vectors directory ``out`` (resumable).

    ``config``: the settings that decide the output's bytes besides the writer's own (corpus
    fingerprint, encoder spec, lengths, batch size, dtype, device type), compared on resume.
    """
    writer = open_writer(out, describe_encoder(encoder, topk, mass), encoder_spec, settings, config=config,
                         quant_scale=quant_scale, topk=topk, mass=mass, overwrite=overwrite)
    try:
        run_parts(writer, source if source is not None else text_source(corpus), settings,
                  lambda texts: encoder.encode(texts, "doc"))
        meta = finish_encode(writer, corpus, settings)
    except UsageError:
        writer.discard()  # bad input: resuming cannot help, leave nothing behind
        raise
    return meta, writer


def prune_to_dir(out: Path, src: str, settings: Settings, *, topk: int = 0, mass: float | None = None,
                 overwrite: bool = False) -> tuple[VectorsMeta, VectorsWriter]:
    """Rewrite the vectors directory ``src`` pruned (Top-K and/or mass) at its own scale (exact: stored
    impacts are multiples of 1/scale), without re-encoding."""
    coll = open_collection(src, kind="sparse")
    smeta = coll.meta
    pooling = {"method": smeta.pooling.get("method", "max_log1p_relu"), "topk": topk, "mass": mass}
    writer = VectorsWriter(out, space=coll.space, quant_scale=coll.quant_scale, topk=topk, mass=mass,
                           encoder=dict(smeta.encoder), pooling=pooling,
                           config={"prune_from": str(Path(src).resolve()), "shard_id": settings.shard_id,
                                   "shard_num": settings.shard_num},
                           part_size=settings.part_size, overwrite=overwrite)
    try:
        parts = run_parts(writer, ((d, (ids, q), w) for d, ids, q, w in coll.iter_arrays()), settings, None,
                          desc="prune")
        _check_some(parts, settings)
        meta = writer.finish(_extra(settings, src))
    except UsageError:
        writer.discard()
        raise
    return meta, writer


def pooling_meta(encoder, topk: int, mass: float | None) -> dict:
    """``meta.json``'s pooling: the encoder's own description when it gives one, plus the pruning."""
    own = getattr(encoder, "pooling_meta", None)
    base = dict(own()) if callable(own) else {"method": "max_log1p_relu"}
    return {**base, "topk": topk, "mass": mass}


def _extra(settings: Settings, source: str) -> dict:
    return {"shard": {"id": settings.shard_id, "num": settings.shard_num}, "source": source}


def _check_some(parts: list[dict], settings: Settings) -> None:
    if not parts or sum(p["documents"] for p in parts) == 0:
        raise UsageError("no documents to encode" + (f" in shard {settings.shard_id} of {settings.shard_num}"
                                                     if settings.shard_num > 1 else ""))
