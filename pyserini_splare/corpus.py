"""Streaming corpus readers: JSONL files (or folders of them), ir_datasets ids, CACM's HTML tarball.

Every reader yields :class:`Doc` records one at a time and never holds the corpus in memory. A
document's text is ``title + " " + text`` when it has a title (the seeds encode NeuCLIR1 documents
as title followed by body, and so does Pyserini's ``--fields title text`` with ``add_sep`` off).

Accepted ``--corpus`` values (:func:`open_corpus`):

* a ``.jsonl`` / ``.json`` / ``.jsonl.gz`` file or a folder of them (read in name order): one JSON
  object per line with ``id`` (or ``docid`` / ``_id``), optional ``title``, and ``text`` or
  ``contents`` (Pyserini's JsonCollection field);
* ``irds:ID`` or a bare ir_datasets id such as ``neuclir/1/fa`` (docs ``doc_id, title, text``), read
  lazily through ``ir_datasets`` (which downloads the data on first use);
* a ``.tar.gz`` of HTML files such as Anserini's ``cacm.tar.gz`` (:func:`read_html_tarball`).

Bad input is a :class:`~pyserini_splare._cli.UsageError` naming ``file:line``: a missing id, an
empty text, a line that is not UTF-8 or not JSON. Duplicate ids are caught by
:class:`DuplicateChecker` (8 bytes per document, not the ids themselves).
"""

from __future__ import annotations

import gzip
import hashlib
import html
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ._cli import UsageError
from .vectors import iter_json_lines

JSONL_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz")
ID_KEYS = ("id", "docid", "_id", "doc_id")
TEXT_KEYS = ("text", "contents")


@dataclass(frozen=True)
class Doc:
    id: str
    text: str
    where: str = ""  # file:line (or dataset:index), for error messages


def join_title(title: str | None, text: str) -> str:
    """``title + " " + text`` (the seeds' and Pyserini's title/body concatenation); the text alone without a title."""
    title = (title or "").strip()
    return f"{title} {text}" if title else text


def _check_id(docid, where: str) -> str:
    if isinstance(docid, bool) or not isinstance(docid, (str, int)):
        raise UsageError(f"{where}: document id must be a string, got {docid!r}")
    docid = str(docid)
    if not docid.strip() or any(c.isspace() for c in docid):
        raise UsageError(f"{where}: document id must be non-empty without whitespace, got {docid!r}")
    return docid


def _check_text(text, docid: str, where: str) -> str:
    if not isinstance(text, str):
        raise UsageError(f"{where}: text of document {docid!r} must be a string, got {type(text).__name__}")
    if not text.strip():
        raise UsageError(f"{where}: document {docid!r} has empty text")
    return text


def _jsonl_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(JSONL_SUFFIXES))
        if not files:
            raise UsageError(f"{path}: folder holds no {'/'.join(JSONL_SUFFIXES)} files")
        return files
    return [path]


def read_jsonl(path: str | os.PathLike) -> Iterator[Doc]:
    """Stream documents from a JSONL file (optionally gzipped) or a folder of them."""
    for file in _jsonl_files(Path(path)):
        opener = gzip.open if file.name.endswith(".gz") else open
        for where, obj in iter_json_lines(file, opener):
            key = next((k for k in ID_KEYS if k in obj), None)
            if key is None:
                raise UsageError(f"{where}: missing 'id'")
            docid = _check_id(obj[key], where)
            tkey = next((k for k in TEXT_KEYS if k in obj), None)
            if tkey is None:
                raise UsageError(f"{where}: document {docid!r} has no 'text' or 'contents'")
            title = obj.get("title")
            if title is not None and not isinstance(title, str):
                raise UsageError(f"{where}: 'title' of document {docid!r} must be a string")
            text = _check_text(obj[tkey], docid, where)
            yield Doc(docid, join_title(title, text), where)


def read_ir_datasets(dataset_id: str) -> Iterator[Doc]:
    """Stream ``doc_id, title, text`` documents of an ir_datasets id (e.g. ``neuclir/1/fa``), lazily imported."""
    try:
        import ir_datasets
    except ImportError:
        raise UsageError("reading an ir_datasets corpus needs `pip install ir_datasets`") from None
    try:
        ds = ir_datasets.load(dataset_id)
    except KeyError:
        raise UsageError(f"{dataset_id!r} is neither a file nor a known ir_datasets id") from None
    if not ds.has_docs():
        raise UsageError(f"ir_datasets {dataset_id!r} has no documents")
    for n, d in enumerate(ds.docs_iter()):
        where = f"{dataset_id}#{n}"
        docid = _check_id(d.doc_id, where)
        body = getattr(d, "text", None)
        if body is None:
            body = getattr(d, "body", None) or getattr(d, "default_text")()
        yield Doc(docid, join_title(getattr(d, "title", None), _check_text(body, docid, where)), where)


_TAG = re.compile(r"<[^>]*>")


def html_to_text(raw: str) -> str:
    """Visible text of a small HTML page: tags removed, entities decoded, whitespace collapsed.

    Close to what Anserini's ``HtmlCollection`` (Jsoup ``text()``) indexes for CACM's ``<pre>`` pages.
    """
    raw = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", raw)
    return " ".join(html.unescape(_TAG.sub(" ", raw)).split())


def read_html_tarball(path: str | os.PathLike) -> Iterator[Doc]:
    """Stream the ``*.html`` members of a tarball (Anserini's ``cacm.tar.gz``): id = file name without extension."""
    path = Path(path)
    try:
        tf = tarfile.open(path, "r:*")
    except (OSError, tarfile.TarError) as e:
        raise UsageError(f"cannot read {path} as a tar archive: {e}") from None
    with tf:
        for member in tf:  # streaming: members are read in archive order
            if not member.isfile() or not member.name.lower().endswith((".html", ".htm")):
                continue
            where = f"{path}:{member.name}"
            raw = tf.extractfile(member).read()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise UsageError(f"{where}: not valid UTF-8") from None
            docid = _check_id(Path(member.name).name.rsplit(".", 1)[0], where)
            yield Doc(docid, _check_text(html_to_text(text), docid, where), where)


def read_cacm_html(path: str | os.PathLike) -> Iterator[Doc]:
    """CACM (3,204 HTML documents in ``cacm.tar.gz``), as Anserini's CACM regression indexes it."""
    return read_html_tarball(path)


def open_corpus(spec: str) -> Iterator[Doc]:
    """Stream the documents of ``--corpus`` (a path, ``irds:ID`` or a bare ir_datasets id)."""
    if spec.startswith("irds:"):
        return read_ir_datasets(spec[len("irds:"):])
    path = Path(spec)
    if path.exists():
        name = path.name.lower()
        if path.is_file() and name.endswith((".tar.gz", ".tgz", ".tar")):
            return read_html_tarball(path)
        if path.is_dir() or name.endswith(JSONL_SUFFIXES):
            return read_jsonl(path)
        raise UsageError(f"{spec}: unknown corpus format (expected {', '.join(JSONL_SUFFIXES)}, a folder of them, "
                         "or a .tar.gz of HTML files)")
    if "/" in spec and not spec.startswith((".", "/")):
        return read_ir_datasets(spec)
    raise UsageError(f"corpus {spec} does not exist (give a JSONL file, a folder, or irds:<ir_datasets id>)")


def doc_hash(docid: str) -> int:
    """64-bit hash of a document id (the same as the vectors writer's)."""
    return int.from_bytes(hashlib.blake2b(docid.encode(), digest_size=8).digest(), "little", signed=True)


class DuplicateChecker:
    """Finds repeated ids in a stream using 8 bytes per document (ids hashed, sorted at the end).

    ``add`` is O(1); :meth:`first_duplicate` sorts the hashes once. A set of Python ints would cost
    ~70 bytes per document (700 MB at NeuCLIR1's 10M); an int64 array costs 80 MB.
    """

    def __init__(self):
        self._chunks: list[np.ndarray] = []
        self._cur: list[int] = []

    def add(self, docid: str) -> None:
        self._cur.append(doc_hash(docid))
        if len(self._cur) >= 65536:
            self._flush()

    def extend_hashes(self, hashes: np.ndarray) -> None:
        self._flush()
        self._chunks.append(np.asarray(hashes, dtype=np.int64))

    def _flush(self) -> None:
        if self._cur:
            self._chunks.append(np.asarray(self._cur, dtype=np.int64))
            self._cur = []

    def duplicate_hashes(self) -> set[int]:
        self._flush()
        if not self._chunks:
            return set()
        h = np.sort(np.concatenate(self._chunks))
        return set(h[1:][h[1:] == h[:-1]].tolist())


def find_duplicate(docs: Iterator[Doc], hashes: set[int]) -> str | None:
    """Rescan a corpus for the first id whose hash is in ``hashes``; a message naming both places."""
    seen: dict[str, str] = {}
    for d in docs:
        if doc_hash(d.id) in hashes:
            if d.id in seen:
                return f"{d.where}: duplicate document id {d.id!r} (first at {seen[d.id]})"
            seen[d.id] = d.where
    return None
