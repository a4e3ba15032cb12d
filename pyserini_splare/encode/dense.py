"""Dense encoders (Qwen3-Embedding) and the dense vectors-directory format read by the faiss index.

A dense vectors directory::

    meta.json            {"format": "pyserini_splare.dense/1", "dim": D, "count": N, "encoder": spec,
                          "normalized": true, "stats": {...}}
    part-00000.ids.txt   one docid per line
    part-00000.npy       float32 [n, D], row i embeds line i of the ids file
    part-00001.ids.txt   ...

Qwen3-Embedding (Zhang et al., 2025, arXiv 2506.05176): queries are ``Instruct: {task}\\nQuery:{q}``,
documents plain text; sequences end with ``<|endoftext|>``, are LEFT padded, and the embedding is
the hidden state of the last token, L2-normalized. The module-level code needs only numpy; torch
and transformers are imported when a model is loaded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from .._cli import UsageError, atomic_dir, atomic_file
from ._base import DenseEncoder, Kind, check_kind

DENSE_FORMAT = "pyserini_splare.dense/1"
DEFAULT_TASK = "Given a web search query, retrieve relevant passages that answer the query"
DEFAULT_MAX_LENGTH = 8192


# --------------------------------------------------------------------------------------------
# The dense vectors directory
# --------------------------------------------------------------------------------------------


def dense_meta(dim: int, count: int, encoder: Mapping[str, Any], stats: Mapping[str, Any] | None = None,
               normalized: bool = True) -> dict[str, Any]:
    return {"format": DENSE_FORMAT, "dim": int(dim), "count": int(count), "encoder": dict(encoder),
            "normalized": bool(normalized), "stats": dict(stats or {})}


def write_dense_part(folder: Path, k: int, ids: Sequence[str], emb: np.ndarray, temporary: bool = False) -> dict[str, Path]:
    """Write ``part-k.ids.txt`` and ``part-k.npy``; with ``temporary`` they get hidden names, returned as
    {final name: temporary path} for the caller to rename (the resumable encoder commits them)."""
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    if emb.ndim != 2 or emb.shape[0] != len(ids):
        raise ValueError(f"{len(ids)} ids but embeddings of shape {emb.shape}")
    for d in ids:
        if not d or any(c.isspace() for c in d):
            raise UsageError(f"document id must be non-empty without whitespace, got {d!r}")
    names = {f"part-{k:05d}.ids.txt": None, f"part-{k:05d}.npy": None}
    out = {}
    for name in names:
        path = folder / (f".{name}.tmp" if temporary else name)
        with open(path, "wb") as f:
            if name.endswith(".npy"):
                np.save(f, emb)
            else:
                f.write("".join(f"{d}\n" for d in ids).encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        out[name] = path
    return out


class DenseWriter:
    """Context manager writing a dense vectors directory atomically (``OUT.partial`` then rename).

    ``write(ids, embeddings)`` appends rows; a part is flushed every ``shard_size`` rows.
    """

    def __init__(self, out_dir: str | os.PathLike, dim: int, encoder: Mapping[str, Any] | None = None, *,
                 shard_size: int = 100_000, normalized: bool = True, overwrite: bool = False):
        if dim <= 0 or shard_size <= 0:
            raise ValueError("dim and shard_size must be positive")
        self.out_dir, self.dim, self.encoder = Path(out_dir), int(dim), dict(encoder or {})
        self.shard_size, self.normalized, self.overwrite = shard_size, normalized, overwrite
        self.count, self._part = 0, 0
        self._ids: list[str] = []
        self._rows: list[np.ndarray] = []
        self._seen: set[str] = set()

    def __enter__(self) -> "DenseWriter":
        self._ctx = atomic_dir(self.out_dir, overwrite=self.overwrite)
        self._dir = self._ctx.__enter__()
        return self

    def write(self, ids: Sequence[str], embeddings: np.ndarray) -> None:
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape != (len(ids), self.dim):
            raise ValueError(f"expected embeddings of shape ({len(ids)}, {self.dim}), got {emb.shape}")
        if not np.all(np.isfinite(emb)):
            raise UsageError("embedding holds NaN or infinite values")
        for d in ids:
            if d in self._seen:
                raise UsageError(f"duplicate document id {d!r}")
            self._seen.add(d)
        self._ids.extend(ids)
        self._rows.append(emb)
        while len(self._ids) >= self.shard_size:
            self._flush(self.shard_size)

    def _flush(self, n: int) -> None:
        if not self._ids:
            return
        emb = np.concatenate(self._rows)
        write_dense_part(self._dir, self._part, self._ids[:n], emb[:n])
        self._ids, self._rows = self._ids[n:], [emb[n:]] if n < len(emb) else []
        self._part += 1
        self.count += n

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self._flush(len(self._ids))
                if self.count == 0:
                    raise UsageError("no embeddings were written")
                with atomic_file(self._dir / "meta.json") as f:
                    json.dump(dense_meta(self.dim, self.count, self.encoder, normalized=self.normalized), f, indent=1)
        except BaseException as e:
            self._ctx.__exit__(type(e), e, e.__traceback__)
            raise
        return self._ctx.__exit__(exc_type, exc, tb)


def read_dense_meta(vectors_dir: str | os.PathLike) -> dict[str, Any]:
    """Read and check a dense vectors directory's ``meta.json``."""
    d = Path(vectors_dir)
    if not d.is_dir():
        raise UsageError(f"dense vectors directory {d} does not exist")
    p = d / "meta.json"
    if not p.is_file():
        raise UsageError(f"{d} has no meta.json: not a vectors directory written by `python -m pyserini_splare.encode`")
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"{p}: malformed JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != DENSE_FORMAT:
        fmt = meta.get("format") if isinstance(meta, dict) else None
        raise UsageError(f"{p}: format {fmt!r} is not dense vectors ({DENSE_FORMAT}); sparse vectors go to the "
                         f"lucene, seismic or exact backends")
    dim = meta.get("dim")
    if not isinstance(dim, int) or dim <= 0:
        raise UsageError(f"{p}: 'dim' must be a positive integer, got {dim!r}")
    return meta


def iter_dense(folder: str | os.PathLike) -> Iterator[tuple[list[str], np.ndarray]]:
    """Stream ``(ids, float32 array [n, dim])`` part by part (a part at a time in memory)."""
    meta = read_dense_meta(folder)
    parts = sorted(Path(folder).glob("part-*.npy"))
    if not parts:
        raise UsageError(f"{folder} holds no part-*.npy files")
    total = 0
    for npy in parts:
        ids_file = npy.with_name(npy.name[: -len(".npy")] + ".ids.txt")
        if not ids_file.is_file():
            raise UsageError(f"{npy} has no matching {ids_file.name}")
        try:
            ids = ids_file.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise UsageError(f"{ids_file}: not valid UTF-8") from None
        emb = np.load(npy, allow_pickle=False)  # never unpickle user files
        if emb.ndim != 2 or emb.shape[0] != len(ids) or emb.shape[1] != meta["dim"]:
            raise UsageError(f"{npy}: shape {emb.shape} does not match {len(ids)} ids x dim {meta['dim']}")
        total += len(ids)
        yield ids, emb.astype(np.float32, copy=False)
    if total != meta["count"]:
        raise UsageError(f"{folder}: meta.json says {meta['count']} vectors, the parts hold {total}")


# --------------------------------------------------------------------------------------------
# Qwen3-Embedding
# --------------------------------------------------------------------------------------------


def last_token_pool(hidden, mask):
    """Hidden state of each sequence's last real token (Qwen3-Embedding's pooling).

    Under left padding that is the last column; under right padding it is found from the mask.
    """
    import torch

    if bool((mask[:, -1] == 1).all()):
        return hidden[:, -1]
    last = mask.sum(dim=1) - 1
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


class Qwen3EmbedEncoder(DenseEncoder):
    """Qwen3-Embedding (0.6B/4B/8B): instruction-prefixed queries, plain documents, last-token pooling, L2."""

    def __init__(self, path: str, *, device: str = "cpu", dtype: str | None = None,
                 max_length_query: int | None = None, max_length_doc: int | None = None,
                 task: str = DEFAULT_TASK, batch_size: int = 8, trust_remote_code: bool = False):
        import torch
        from transformers import AutoModel, AutoTokenizer

        from .batching import torch_dtype
        from .model import lengths
        from .modules.trunk import quiet_transformers

        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if not task or not task.strip():
            raise ValueError("task instruction must be non-empty")
        self.path, self.task, self.batch_size = str(path), task, batch_size
        self.device, self.dtype = torch.device(device), torch_dtype(dtype)
        self.max_length_query, self.max_length_doc, self.overrides = lengths(
            (DEFAULT_MAX_LENGTH, DEFAULT_MAX_LENGTH), max_length_query, max_length_doc)
        local = Path(self.path).is_dir()
        try:
            # Left padding: every sequence then ends in the last column, where the pooled token sits.
            self.tokenizer = AutoTokenizer.from_pretrained(self.path, padding_side="left", local_files_only=local,
                                                           trust_remote_code=trust_remote_code)
            with quiet_transformers():
                self.model = AutoModel.from_pretrained(self.path, dtype=self.dtype, local_files_only=local,
                                                       trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UsageError(f"cannot load a Qwen3-Embedding model from {self.path}: {msg}") from None
        self.model.to(self.device).eval()
        self.dim = int(self.model.config.hidden_size)
        self.eos_id = self.tokenizer.convert_tokens_to_ids("<|endoftext|>")
        if not isinstance(self.eos_id, int) or self.eos_id == self.tokenizer.unk_token_id:
            self.eos_id = self.tokenizer.eos_token_id
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.convert_ids_to_tokens(self.eos_id)

    def spec(self) -> dict[str, Any]:
        spec = {"type": "qwen3-embed", "path": self.path, "max_length_query": self.max_length_query,
                "max_length_doc": self.max_length_doc, "task": self.task,
                "dtype": str(self.dtype).replace("torch.", ""), "pooling": "last-token", "normalized": True}
        if self.overrides:
            spec["overrides"] = dict(self.overrides)
        return spec

    def format(self, text: str, kind: Kind) -> str:
        return f"Instruct: {self.task}\nQuery:{text}" if kind == "query" else text

    def _ids(self, text: str, max_length: int) -> list[int]:
        """Token ids ending with ``<|endoftext|>`` (added here when the tokenizer does not add it itself)."""
        ids = self.tokenizer(text, truncation=True, max_length=max_length, add_special_tokens=True)["input_ids"]
        if self.eos_id is not None and (not ids or ids[-1] != self.eos_id):
            ids = ids[: max_length - 1] + [self.eos_id]
        return ids

    def encode(self, texts: Sequence[str], kind: Kind = "doc") -> np.ndarray:
        import torch

        check_kind(kind)
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        from .batching import length_sorted_batches

        max_length = self.max_length_query if kind == "query" else self.max_length_doc
        ids = [self._ids(self.format(t, kind), max_length) for t in texts]
        out = np.zeros((len(ids), self.dim), np.float32)
        for idx in length_sorted_batches([len(x) for x in ids], self.batch_size):
            batch = self.tokenizer.pad([{"input_ids": ids[i]} for i in idx], padding="longest", return_tensors="pt")
            with torch.inference_mode():
                try:
                    h = self.model(input_ids=batch["input_ids"].to(self.device),
                                   attention_mask=batch["attention_mask"].to(self.device)).last_hidden_state
                except torch.OutOfMemoryError:
                    raise UsageError(f"out of memory embedding {len(idx)} texts: lower --batch-size or --max-length") from None
                pooled = last_token_pool(h, batch["attention_mask"].to(self.device)).float()
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1)
            out[idx] = pooled.cpu().numpy()
        return out


def load_qwen3_embed(path_or_id: str, device: str = "cpu", dtype: str | None = None,
                     max_length_query: int | None = None, max_length_doc: int | None = None,
                     trust_remote_code: bool = False, batch_size: int = 8, task: str = DEFAULT_TASK,
                     **_ignored) -> Qwen3EmbedEncoder:
    """Factory registered as ``qwen3-embed`` in ``ENCODERS`` (``qwen3-embed:Qwen/Qwen3-Embedding-8B``)."""
    return Qwen3EmbedEncoder(path_or_id, device=device, dtype=dtype, max_length_query=max_length_query,
                             max_length_doc=max_length_doc, task=task, batch_size=batch_size,
                             trust_remote_code=trust_remote_code)
