"""Encoding on Ray: Ray Data streams the corpus in blocks to a pool of encoder actors that write parts.

Block ``k`` is exactly the single process's part ``k`` and is encoded with its window loop and written with
its writer, so output, resume and faults behave as the single process's (docs/distributed.md, "Encoding on
Ray"). This module adds only the Ray parts: the read task, the actors and the driver's progress.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Mapping

from .._console import progress, verbose
from .._errors import UsageError
from ..distributed.cluster import check_workers, connect, require_resources, usage_error_in

# A block's rows are one document each inside a single Arrow row; list columns keep their order.
_KEY, _IDS, _TEXTS = "key", "ids", "texts"


def _describe(spec: str, options: dict, topk: int, mass: float | None) -> dict[str, Any]:
    """Load the encoder once and return what the driver's writer needs (runs as a Ray task)."""
    from . import load_encoder
    from .pipeline import describe_encoder

    return describe_encoder(load_encoder(spec, **options), topk, mass)


def _datasource(corpus: str, shard_id: int, shard_num: int, part_size: int, skip: Mapping[int, int]):
    from ray.data import Datasource, ReadTask
    from ray.data.block import BlockMetadata

    class CorpusBlocks(Datasource):
        """The shard's documents in blocks of ``part_size``, one row per block; completed blocks
        (``skip``: key -> documents) are read through, checked against the corpus, and not emitted."""

        def get_read_tasks(self, parallelism, per_task_row_limit=None, data_context=None):
            # One task: the corpus is one stream (gzip, irds, tar.gz cannot be split by offset), and
            # reading text is far cheaper than encoding it, so one reader feeds many encoders.
            return [ReadTask(lambda: _read_blocks(corpus, shard_id, shard_num, part_size, dict(skip)),
                             BlockMetadata(num_rows=None, size_bytes=None, exec_stats=None, input_files=None))]

        def estimate_inmemory_data_size(self):
            return None

    return CorpusBlocks()


def _read_blocks(corpus: str, shard_id: int, shard_num: int, part_size: int, skip: dict[int, int]):
    import pyarrow as pa

    from .pipeline import shard_filter, text_source

    ids: list[str] = []
    texts: list[str] = []
    key = 0

    def emit():
        if key in skip:
            if len(ids) != skip[key]:
                raise UsageError(f"part {key} held {skip[key]} documents but the corpus now gives {len(ids)}: the "
                                 f"corpus changed since the interrupted run")
            return None
        return pa.table({_KEY: [key], _IDS: [list(ids)], _TEXTS: [list(texts)]})

    for docid, text, _where in shard_filter(text_source(corpus), shard_id, shard_num):
        ids.append(docid)
        texts.append(text)
        if len(ids) == part_size:
            t = emit()
            if t is not None:
                yield t
            ids.clear()
            texts.clear()
            key += 1
    if ids:
        t = emit()
        if t is not None:
            yield t


class _EncodeWorker:
    """An actor of the pool: one encoder, loaded once; encodes whole blocks and writes their parts."""

    def __init__(self, writer, spec: str, options: dict, batch_size: int, window: int, sleep: float = 0.0):
        from . import load_encoder

        self.writer = writer
        self.encoder = load_encoder(spec, **options)
        self.batch_size, self.window = int(batch_size), int(window)
        self.max_length = options.get("max_length_doc") or options.get("max_length")
        self.sleep = sleep
        self.dense = writer.kind == "dense"
        # Tokens are counted for the progress line only (a fast tokenizer's pass, beside the model's).
        self.tokenizer = getattr(self.encoder, "tokenizer", None)

    def _tokens(self, texts: list[str]) -> int:
        if self.tokenizer is None or not callable(self.tokenizer):
            return 0
        kw = {"truncation": True, "max_length": self.max_length} if self.max_length else {}
        return sum(len(x) for x in self.tokenizer(texts, add_special_tokens=True, **kw)["input_ids"])

    def encode_block(self, key: int, ids: list[str], texts: list[str]) -> dict[str, Any]:
        from .pipeline import encode_texts, write_window

        t0 = time.time()

        def after(_n):
            if self.sleep:
                time.sleep(self.sleep)

        with self.writer.part(key) as part:
            for s in range(0, len(ids), self.window):
                results = encode_texts(texts[s:s + self.window], lambda b: self.encoder.encode(b, "doc"),
                                       self.batch_size, after)
                write_window(part, ids[s:s + self.window], results, self.dense)
        return {"key": key, "documents": len(ids), "tokens": self._tokens(texts), "seconds": time.time() - t0,
                "pid": os.getpid()}

    def __call__(self, batch: dict) -> dict:
        rows = [self.encode_block(int(k), [str(x) for x in i], [str(x) for x in t])
                for k, i, t in zip(batch[_KEY], batch[_IDS], batch[_TEXTS])]
        return {name: [r[name] for r in rows] for name in ("key", "documents", "tokens", "seconds", "pid")}


def encode_on_ray(address: str, out: str | os.PathLike, corpus: str, encoder_spec: str, settings, *,
                  encoder_options: dict[str, Any], config: Mapping[str, Any], quant_scale: float, topk: int = 0,
                  mass: float | None = None, overwrite: bool = False, workers: int = 1,
                  gpus_per_worker: float = 0.0, cpus_per_worker: float = 1.0):
    """Encode ``corpus`` into the vectors directory ``out`` on a Ray cluster; returns (meta, run report).

    The arguments are :func:`~pyserini_splare.encode.pipeline.encode_to_dir`'s, so the output and its resume state
    are the single process's.
    """
    check_workers(workers, gpus_per_worker, cpus_per_worker)
    options = dict(encoder_options)
    if gpus_per_worker > 0:
        options["device"] = "cuda"  # Ray gives each actor its own GPUs through CUDA_VISIBLE_DEVICES
    # A local cluster gets one CPU beyond the workers' for the corpus reader and Ray Data's own tasks.
    with connect(address, num_cpus=math.ceil(workers * cpus_per_worker) + 1) as ray:
        require_resources(ray, workers, cpus_per_worker, gpus_per_worker)
        return _run(ray, Path(out), corpus, encoder_spec, settings, options, config, quant_scale, topk, mass,
                    overwrite, workers, gpus_per_worker, cpus_per_worker)


def _run(ray, out, corpus, spec, settings, options, config, quant_scale, topk, mass, overwrite, workers,
         gpus_per_worker, cpus_per_worker):
    from ..corpus import count_documents
    from .pipeline import finish_encode, open_writer, shard_share

    t_start = time.time()
    describe = ray.remote(num_cpus=cpus_per_worker, num_gpus=gpus_per_worker, max_retries=0)(_describe)
    try:
        info = ray.get(describe.remote(spec, options, topk, mass))
    except Exception as e:
        raise usage_error_in(e) or e from None
    writer = open_writer(out, info, spec, settings, config=config, quant_scale=quant_scale, topk=topk, mass=mass,
                         overwrite=overwrite)
    try:
        done = {}
        for stem in writer.completed():
            key = int(stem.rsplit("-", 1)[1])
            done[key] = writer.done(key)["documents"]
        if done:
            print(f"resuming {writer.tmp}: {len(done)} parts already complete ({sum(done.values()):,} documents), "
                  f"not re-encoded", file=sys.stderr)
        total = count_documents(corpus)
        report = _stream(ray, writer, corpus, spec, settings, options, done,
                         None if total is None else shard_share(total, settings), workers, gpus_per_worker,
                         cpus_per_worker)
        meta = finish_encode(writer, corpus, settings)
    except UsageError:
        writer.discard()  # bad input: resuming cannot help
        raise
    report.update(resumed_parts=len(done), wall_seconds=round(time.time() - t_start, 2))
    return meta, report


def _stream(ray, writer, corpus, spec, settings, options, done, total, workers, gpus_per_worker, cpus_per_worker):
    import ray.data

    from .pipeline import window_size

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # ours below says documents/s, tokens/s and the ETA
    # its execution-plan lines and "progress bars disabled" warning are not for users
    logging.getLogger("ray.data").setLevel(logging.INFO if verbose() else logging.ERROR)
    source = _datasource(corpus, settings.shard_id, settings.shard_num, settings.part_size, done)
    # The reader asks for no CPU of its own: it only parses text, and a 2-CPU local cluster with 2
    # encoder actors would otherwise have no slot left for it.
    ds = ray.data.read_datasource(source, num_cpus=0).map_batches(
        _EncodeWorker, batch_size=1, compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=cpus_per_worker,
        num_gpus=gpus_per_worker,
        fn_constructor_kwargs=dict(writer=writer, spec=spec, options=options, batch_size=settings.batch_size,
                                   window=window_size(settings), sleep=settings.sleep))
    already = sum(done.values())
    docs = tokens = parts = 0
    pids: set[int] = set()
    t0 = time.time()
    try:
        with progress(total=total, initial=already, desc="encode (ray)", unit="doc") as bar:
            for row in ds.iter_rows():
                docs += int(row["documents"])
                tokens += int(row["tokens"])
                parts += 1
                pids.add(int(row["pid"]))
                bar.update(int(row["documents"]))
                dt = max(time.time() - t0, 1e-9)
                bar.set_postfix_str(f"{tokens / dt:,.0f} tokens/s, {parts} parts")
    except Exception as e:
        err = usage_error_in(e)
        if err is not None:
            raise err from None
        raise
    dt = time.time() - t0
    print(f"encoded {docs:,} documents in {parts} parts on {workers} Ray workers in {dt:.1f} s: "
          f"{docs / max(dt, 1e-9):,.1f} documents/s, {tokens / max(dt, 1e-9):,.0f} tokens/s", file=sys.stderr)
    return {"documents": docs, "tokens": tokens, "parts": parts, "seconds": round(dt, 2),
            "worker_processes": len(pids)}
