"""python -m pyserini_splare.encode: encode a corpus into a vectors directory (sparse) or a dense one.

Streaming, length-sorted within a bounded window, sharded, and resumable (see :class:`PartWriter`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from .._cli import UsageError, atomic_file, cli_main, partial_dir, progress, run

EPILOG = """\
The output is a vectors directory: part-*.jsonl in Pyserini's JsonVectorCollection shape
({"id", "contents", "vector": {term: int}}) plus meta.json (encoder spec, feature space, quantization
scale, pooling, l0 statistics), ready for `python -m pyserini_splare.index`. A dense encoder
(qwen3-embed:...) writes part-*.ids.txt + part-*.npy instead, for `--backend faiss`.

examples:
  # SPLADE on a JSONL corpus ({"id", "title", "text"|"contents"} per line), all terms kept
  python -m pyserini_splare.encode --corpus corpus.jsonl --encoder splade:naver/splade-v3 \\
      --output vectors/splade --batch-size 32 --device cuda:0 --dtype bf16
  # SPLARE on NeuCLIR1 Persian through ir_datasets, Top-K pooled to 400 terms per document,
  # shard 3 of 8 (every 8th document, starting at the 4th): run one process per GPU
  python -m pyserini_splare.encode --corpus irds:neuclir/1/fa --encoder splare:ckpt/splare-7b \\
      --output vectors/fa.splare.3 --shard-id 3 --shard-num 8 --topk 400 --max-length 1024 --dtype bf16
  # prune an existing vectors directory to 400 terms per document, without re-encoding
  python -m pyserini_splare.encode --prune-from vectors/splare --topk 400 --output vectors/splare.top400
  # Qwen3-Embedding (dense; documents are embedded as plain text)
  python -m pyserini_splare.encode --corpus corpus.jsonl --encoder qwen3-embed:Qwen/Qwen3-Embedding-8B \\
      --output vectors/qwen3 --dtype bf16 --device cuda:0

Resuming: a killed run leaves OUTPUT.partial/ with every completed part; rerunning the same command
skips them and produces byte-identical output. Pruning: --topk keeps the k largest weights (the
seeds' pooled setting is 40 per query / 400 per document; 0 = no pooling); --mass keeps the fewest
largest weights holding that fraction of the vector's mass (MILCO). Encoder kinds: splade, splade-llm,
splare, milco, qwen3-embed (docs/encoders.md).
"""

STATE_DIR = "_state"
STATE_VERSION = 1
DEFAULT_PART_SIZE = 10_000
# Length sorting happens inside windows of this many batches: streaming memory stays bounded,
# and within a window the batches pad to nearly their own length.
WINDOW_BATCHES = 50
SLEEP_ENV = "PYSERINI_SPLARE_TEST_SLEEP"  # test-only: seconds to sleep after each batch (resume tests)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pyserini_splare.encode", description="Encode a corpus into a vectors directory.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", help="JSONL file or folder ({id, title?, text|contents}), irds:<ir_datasets id>, "
                                    "or a .tar.gz of HTML files (CACM)")
    p.add_argument("--encoder", metavar="SPEC", help="KIND:PATH (splade, splade-llm, splare, milco, qwen3-embed) or a "
                                                     "model directory whose config names its kind")
    p.add_argument("--prune-from", metavar="DIR", help="prune an existing vectors directory instead of encoding")
    p.add_argument("--output", help="output directory (built in OUTPUT.partial, renamed when complete)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    p.add_argument("--max-length", type=int, default=1024, help="max tokens per document (default 1024; BERT "
                                                                 "models are clamped to 512)")
    p.add_argument("--batch-size", type=int, default=32, help="documents per forward pass (default 32)")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:0 (default cpu)")
    p.add_argument("--dtype", default=None, choices=["bf16", "fp16", "fp32"],
                   help="model weights and activations dtype (default: fp32 for BERT models, bf16 is the usual "
                        "choice for 7-8B trunks on GPU)")
    p.add_argument("--shard-id", type=int, default=0, help="this shard (0-based) of --shard-num (default 0)")
    p.add_argument("--shard-num", type=int, default=1, help="number of shards: shard i encodes documents "
                                                            "i, i+n, i+2n, ... of the corpus (default 1)")
    p.add_argument("--topk", type=int, default=0, help="Top-K pooling: keep the k largest weights per document "
                                                       "(seeds: 400 per document, 40 per query); 0 keeps all (default)")
    p.add_argument("--mass", type=float, default=None, help="mass pruning (MILCO): keep the fewest largest weights "
                                                            "summing to this fraction (0, 1] of the vector's total")
    p.add_argument("--quant-scale", type=float, default=None,
                   help="integer weights = round(w * scale) (default 100; --prune-from keeps the source's)")
    p.add_argument("--part-size", type=int, default=DEFAULT_PART_SIZE,
                   help=f"documents per part file, the unit of resuming (default {DEFAULT_PART_SIZE:,})")
    p.add_argument("--trust-remote-code", action="store_true", help="allow the model's own code (MILCO needs it)")
    return p


# --------------------------------------------------------------------------------------------
# Sources: (docid, payload, where) with payload a text (encode) or a SparseVector (prune)
# --------------------------------------------------------------------------------------------


def shard_filter(items: Iterable, shard_id: int, shard_num: int) -> Iterator:
    """Every ``shard_num``-th item starting at ``shard_id``: needs no corpus size, so it streams, and shards
    get equal shares of long and short documents wherever they sit in the corpus."""
    for j, item in enumerate(items):
        if j % shard_num == shard_id:
            yield item


def _text_source(corpus: str):
    from ..corpus import open_corpus

    for d in open_corpus(corpus):
        yield d.id, d.text, d.where


def _vector_source(src: str):
    from ..vectors import SparseVector, iter_vectors, read_meta

    meta = read_meta(src)
    space = meta.space
    for docid, vec in iter_vectors(src):
        ids = np.fromiter((space.id(t) for t in vec), dtype=np.int64, count=len(vec))
        # Stored weights are multiples of 1/scale: re-quantizing at the same scale is exact.
        w = np.fromiter(vec.values(), dtype=np.float64, count=len(vec)) / meta.quant_scale
        yield docid, SparseVector(ids, w), docid


# --------------------------------------------------------------------------------------------
# Resumable part writer
# --------------------------------------------------------------------------------------------


class PartWriter:
    """Writes ``OUT.partial/part-%05d.*`` one part (``part_size`` documents) at a time, each atomically.

    A part's completion is marked by ``_state/part-%05d.json`` (written after the part file), which
    holds its statistics; ``_state/part-%05d.ids.npy`` holds its 64-bit id hashes (the duplicate check).
    ``_state/config.json`` holds the settings that decide the bytes of the output; a rerun with the same
    settings skips completed parts, so a killed run resumes and ends byte-identical to an uninterrupted
    one. At the end ``meta.json`` is written, ``_state`` removed and the folder renamed to ``OUT``.
    """

    def __init__(self, out: Path, config: dict[str, Any], overwrite: bool = False):
        self.out, self.tmp = out, partial_dir(out)
        if out.exists() and not overwrite:
            raise UsageError(f"{out} already exists (remove it or pass --overwrite)")
        if not out.parent.is_dir():
            raise UsageError(f"parent directory {out.parent} does not exist")
        self.state = self.tmp / STATE_DIR
        cfg_file = self.state / "config.json"
        self.config = {"state_version": STATE_VERSION, **config}
        self.resumed = False
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
            if old is None:
                shutil.rmtree(self.tmp)
            else:
                self.resumed = True
        self.state.mkdir(parents=True, exist_ok=True)
        if not self.resumed:
            with atomic_file(cfg_file) as f:
                json.dump(self.config, f, indent=1, sort_keys=True)

    def done(self, k: int) -> dict | None:
        p = self.state / f"part-{k:05d}.json"
        if not p.is_file():
            return None
        return json.loads(p.read_text(encoding="utf-8"))

    def hashes(self, k: int) -> np.ndarray:
        return np.load(self.state / f"part-{k:05d}.ids.npy")

    def commit(self, k: int, files: dict[str, Path], hashes: np.ndarray, stats: dict) -> None:
        """Move a finished part's temporary files into place, then mark it complete."""
        for name, tmp in files.items():
            os.replace(tmp, self.tmp / name)
        with atomic_file(self.state / f"part-{k:05d}.ids.npy", "wb") as f:
            np.save(f, np.asarray(hashes, dtype=np.int64))
        with atomic_file(self.state / f"part-{k:05d}.json") as f:
            json.dump(stats, f, sort_keys=True)

    def finish(self, meta: dict) -> None:
        with atomic_file(self.tmp / "meta.json") as f:
            json.dump(meta, f, indent=1)
        shutil.rmtree(self.state)
        if self.out.exists():
            shutil.rmtree(self.out)
        os.replace(self.tmp, self.out)

    def discard(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def _prune(vec, topk: int, mass: float | None):
    if mass is not None:
        vec = vec.mass_prune(mass)
    if topk > 0:
        vec = vec.topk(topk)
    return vec


class SparsePart:
    """Accumulates one sparse part: JSONL lines to a temporary file, statistics in memory."""

    def __init__(self, writer: PartWriter, k: int, space, scale: float, topk: int, mass: float | None):
        from ..vectors import QuantStats

        self.name = f"part-{k:05d}.jsonl"
        self.path = writer.tmp / f".{self.name}.tmp"
        self.f = open(self.path, "w", encoding="utf-8")
        self.space, self.scale, self.topk, self.mass = space, scale, topk, mass
        self.q = QuantStats(scale)
        self.hashes: list[int] = []
        self.s = {"documents": 0, "l0_before": 0, "l0_after": 0, "postings": 0, "dropped_empty": 0,
                  "max_l0_before": 0, "max_l0_after": 0}

    def add(self, docid: str, vec) -> None:
        from ..corpus import doc_hash
        from ..vectors import quantize_vector

        vec = vec.nonzero()
        w = vec.weights
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise RuntimeError(f"document {docid!r}: the encoder produced a NaN, infinite or negative weight")
        pruned = _prune(vec, self.topk, self.mass)
        ids, q = quantize_vector(pruned, self.scale, self.q)
        s = self.s
        s["documents"] += 1
        s["l0_before"] += vec.nnz
        s["l0_after"] += pruned.nnz
        s["max_l0_before"] = max(s["max_l0_before"], vec.nnz)
        s["max_l0_after"] = max(s["max_l0_after"], pruned.nnz)
        self.hashes.append(doc_hash(docid))
        if ids.size == 0:
            # Nothing survives quantization: such a document can never be retrieved by a dot product,
            # and an empty vector is invalid in a vectors directory, so it is left out and counted.
            s["dropped_empty"] += 1
            return
        s["postings"] += int(ids.size)
        rec = {"id": docid, "contents": "", "vector": dict(zip(self.space.terms(ids), q.tolist()))}
        self.f.write(json.dumps(rec, ensure_ascii=False) + "\n")

    def close(self) -> tuple[dict[str, Path], np.ndarray, dict]:
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()
        q = self.q
        stats = {**self.s, "q_weights": q.n_weights, "q_zeroed": q.n_zeroed, "q_max_rel_error": q.max_rel_error,
                 "q_sum_abs_error": q.sum_abs_error}
        return {self.name: self.path}, np.asarray(self.hashes, np.int64), stats


class DensePart:
    """Accumulates one dense part: ids and a float32 matrix, written as ``.ids.txt`` + ``.npy``."""

    def __init__(self, writer: PartWriter, k: int):
        self.writer, self.k = writer, k
        self.ids: list[str] = []
        self.rows: list[np.ndarray] = []

    def add_batch(self, docids: list[str], emb: np.ndarray) -> None:
        self.ids.extend(docids)
        self.rows.append(np.asarray(emb, dtype=np.float32))

    def close(self):
        from ..corpus import doc_hash
        from .dense import write_dense_part

        files = write_dense_part(self.writer.tmp, self.k, self.ids, np.concatenate(self.rows), temporary=True)
        return files, np.asarray([doc_hash(d) for d in self.ids], np.int64), {"documents": len(self.ids)}


def _sparse_meta(space, scale, encoder_meta, pooling, parts: list[dict], extra: dict) -> dict:
    from ..vectors import QuantStats, VectorsMeta

    tot = {k: sum(p[k] for p in parts) for k in ("documents", "l0_before", "l0_after", "postings", "dropped_empty")}
    n = tot["documents"]
    q = QuantStats(scale)
    q.n_weights = sum(p["q_weights"] for p in parts)
    q.n_zeroed = sum(p["q_zeroed"] for p in parts)
    q.max_rel_error = max((p["q_max_rel_error"] for p in parts), default=0.0)
    q.sum_abs_error = sum(p["q_sum_abs_error"] for p in parts)
    written = n - tot["dropped_empty"]
    stats = {
        "documents": written,
        "postings": tot["postings"],
        "mean_terms_per_doc": tot["postings"] / written if written else 0.0,
        # l0 = active features per document (the seeds' Table 3 remark): before pruning, after Top-K/mass
        # pruning, and after quantization (what the index holds).
        "l0": {
            "before_pruning_mean": tot["l0_before"] / n if n else 0.0,
            "after_pruning_mean": tot["l0_after"] / n if n else 0.0,
            "after_quantization_mean": tot["postings"] / n if n else 0.0,
            "before_pruning_max": max((p["max_l0_before"] for p in parts), default=0),
            "after_pruning_max": max((p["max_l0_after"] for p in parts), default=0),
        },
        "empty_after_quantization": tot["dropped_empty"],
        "quantization": q.to_meta(),
        **extra,
    }
    return VectorsMeta(space.to_meta(), scale, encoder_meta, pooling, stats).to_json(), q, tot


def _check_args(args) -> None:
    if not args.output:
        raise UsageError("--output is required (see --help)")
    if args.prune_from:
        if args.corpus or args.encoder:
            raise UsageError("--prune-from rewrites an existing vectors directory: do not give --corpus/--encoder")
        if args.topk <= 0 and args.mass is None:
            raise UsageError("--prune-from needs --topk K (> 0) and/or --mass M")
    else:
        for flag in ("corpus", "encoder"):
            if not getattr(args, flag):
                raise UsageError(f"--{flag} is required (see --help)")
    if args.shard_num < 1 or not 0 <= args.shard_id < args.shard_num:
        raise UsageError(f"--shard-id must be in [0, --shard-num), got {args.shard_id} of {args.shard_num}")
    if args.batch_size < 1 or args.part_size < 1:
        raise UsageError("--batch-size and --part-size must be >= 1")
    if args.max_length < 2:
        raise UsageError(f"--max-length must be >= 2, got {args.max_length}")
    if args.topk < 0:
        raise UsageError(f"--topk must be >= 0 (0 keeps all), got {args.topk}")
    if args.mass is not None and not 0 < args.mass <= 1:
        raise UsageError(f"--mass must be in (0, 1], got {args.mass}")
    if args.quant_scale is not None and not (args.quant_scale > 0 and np.isfinite(args.quant_scale)):
        raise UsageError(f"--quant-scale must be a positive number, got {args.quant_scale}")


def _corpus_fingerprint(corpus: str) -> dict:
    """What identifies the input for resuming: path, size and mtime (cheap; not a content hash)."""
    p = Path(corpus)
    if not p.exists():
        return {"corpus": corpus}
    files = sorted(p.iterdir()) if p.is_dir() else [p]
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return {"corpus": str(p.resolve()), "corpus_stat": h.hexdigest()[:16]}


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    _check_args(args)
    from ..vectors import DEFAULT_QUANT_SCALE, read_meta

    out = Path(args.output)
    sleep = float(os.environ.get(SLEEP_ENV, "0") or 0)
    if args.prune_from:
        smeta = read_meta(args.prune_from)
        if args.quant_scale is not None and args.quant_scale != smeta.quant_scale:
            raise UsageError(f"--prune-from keeps the source's quantization scale ({smeta.quant_scale:g}); "
                             f"re-quantizing at {args.quant_scale:g} would round twice")
        scale, space, dense = smeta.quant_scale, smeta.space, False
        encoder_meta = dict(smeta.encoder)
        source = _vector_source(args.prune_from)
        config = {"prune_from": str(Path(args.prune_from).resolve())}
        encoder = None
    else:
        from . import load_encoder, resolve_spec
        from ._base import DenseEncoder

        resolve_spec(args.encoder)  # a bad spec fails before the corpus or the model is touched
        source = _text_source(args.corpus)
        config = {**_corpus_fingerprint(args.corpus), "encoder": args.encoder, "max_length": args.max_length,
                  "batch_size": args.batch_size, "dtype": args.dtype, "device_type": args.device.split(":")[0]}
        scale = float(args.quant_scale if args.quant_scale is not None else DEFAULT_QUANT_SCALE)
        # Peek at the first document before loading a multi-GB model: a bad corpus fails fast.
        source = _peek(source)
        encoder = load_encoder(args.encoder, device=args.device, dtype=args.dtype, max_length=args.max_length,
                               trust_remote_code=args.trust_remote_code, batch_size=args.batch_size)
        dense = isinstance(encoder, DenseEncoder)
        space = None if dense else encoder.space
        encoder_meta = {"spec": args.encoder, **encoder.spec()}
    if dense and (args.topk or args.mass is not None):
        raise UsageError("--topk/--mass prune sparse vectors; a dense encoder was given")
    config.update({"shard_id": args.shard_id, "shard_num": args.shard_num, "topk": args.topk, "mass": args.mass,
                   "quant_scale": None if dense else scale, "part_size": args.part_size})
    writer = PartWriter(out, config, overwrite=args.overwrite)
    pooling = {"method": "max_log1p_relu", "topk": args.topk, "mass": args.mass}
    try:
        parts = _run(args, writer, source, encoder, space, scale, dense, sleep)
        if not parts or sum(p["documents"] for p in parts) == 0:
            raise UsageError("no documents to encode" + (f" in shard {args.shard_id} of {args.shard_num}"
                                                         if args.shard_num > 1 else ""))
        _check_duplicates(args, writer, len(parts))
        extra = {"shard": {"id": args.shard_id, "num": args.shard_num},
                 "source": args.prune_from or args.corpus}
        if dense:
            from .dense import dense_meta

            meta = dense_meta(encoder.dim, sum(p["documents"] for p in parts), encoder_meta, extra)
            summary = f"{meta['count']:,} embeddings of dimension {meta['dim']}"
        else:
            meta, q, tot = _sparse_meta(space, scale, encoder_meta, pooling, parts, extra)
            l0 = meta["stats"]["l0"]
            summary = (f"{meta['stats']['documents']:,} documents, mean active features {l0['before_pruning_mean']:.1f} "
                       f"before pruning, {l0['after_pruning_mean']:.1f} after; {q.summary()}")
            if tot["dropped_empty"]:
                summary += f"; {tot['dropped_empty']} documents left out (no weight survived quantization)"
        writer.finish(meta)
    except UsageError:
        writer.discard()  # bad input: resuming cannot help, leave nothing behind
        raise
    print(f"wrote {out}: {summary}", file=sys.stderr)
    return 0


def _peek(source):
    """Read the first item now (so a bad corpus fails before loading the model), then the rest."""
    it = iter(source)
    try:
        first = next(it)
    except StopIteration:
        return iter(())

    def gen():
        yield first
        yield from it

    return gen()


def _run(args, writer: PartWriter, source, encoder, space, scale, dense, sleep) -> list[dict]:
    """Stream the shard's documents part by part; completed parts are skipped (resume)."""
    stream = shard_filter(source, args.shard_id, args.shard_num)
    parts: list[dict] = []
    window = max(args.batch_size * WINDOW_BATCHES, 1)
    bar = progress(desc="encode" if encoder else "prune", unit="doc")
    k = 0
    with bar:
        while True:
            chunk_iter = _take(stream, args.part_size)
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
            part = DensePart(writer, k) if dense else SparsePart(writer, k, space, scale, args.topk, args.mass)
            n = 0
            for win in _windows(chunk_iter, window):
                n += len(win)
                if encoder is None:
                    for docid, vec, _ in win:
                        part.add(docid, vec)
                    bar.update(len(win))
                    continue
                # Longest first within the window (stable): batches pad to nearly their own length.
                order = sorted(range(len(win)), key=lambda i: -len(win[i][1]))
                results: list = [None] * len(win)
                for s in range(0, len(order), args.batch_size):
                    idx = order[s:s + args.batch_size]
                    res = encoder.encode([win[i][1] for i in idx], "doc")
                    for j, i in enumerate(idx):
                        results[i] = res[j]
                    bar.update(len(idx))
                    if sleep:
                        time.sleep(sleep)
                if dense:
                    part.add_batch([d for d, _, _ in win], np.stack(results))
                else:
                    for (docid, _, _), vec in zip(win, results):
                        part.add(docid, vec)
            if n == 0:
                if not dense:
                    part.f.close()
                    os.unlink(part.path)
                break
            files, hashes, stats = part.close()
            writer.commit(k, files, hashes, stats)
            parts.append(stats)
            k += 1
    return parts


def _take(it: Iterator, n: int) -> Iterator:
    for _ in range(n):
        try:
            yield next(it)
        except StopIteration:
            return


def _windows(it: Iterator, size: int) -> Iterator[list]:
    buf = []
    for x in it:
        buf.append(x)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


def _check_duplicates(args, writer: PartWriter, n_parts: int) -> None:
    from ..corpus import DuplicateChecker, find_duplicate

    chk = DuplicateChecker()
    for k in range(n_parts):
        chk.extend_hashes(writer.hashes(k))
    dups = chk.duplicate_hashes()
    if not dups:
        return
    if args.prune_from:
        msg = None
        docs = None
    else:
        from ..corpus import open_corpus

        docs = shard_filter(open_corpus(args.corpus), args.shard_id, args.shard_num)
        msg = find_duplicate(docs, dups)
    raise UsageError(msg or "duplicate document ids (64-bit hash collision)")


if __name__ == "__main__":
    run(main)
