"""Streaming corpus readers: JSONL files (or folders of them), ir_datasets ids, CACM's HTML tarball.

Every reader yields :class:`Doc` records one at a time; a document with a title is ``title + " " + text``
(as the seeds and Pyserini's ``--fields title text`` encode it). Accepted ``--corpus`` values and their
rules: docs/encoders.md, "Encoding a corpus". Bad input is one :class:`~pyserini_splare._errors.UsageError`
naming ``file:line``; duplicate ids are caught where vectors are written (:mod:`pyserini_splare.formats.idhash`).
"""

from __future__ import annotations

import gzip
import html
import os
import re
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ._console import progress
from ._errors import UsageError
from .formats.jsonl import iter_json_lines

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


def corpus_files(path: str | os.PathLike) -> list[Path]:
    """The JSONL files a ``--corpus`` file or folder stands for, in path order.

    A folder is walked with its subfolders (symbolic links followed, hidden entries skipped); any other
    file in it is refused by name, so that no document is left out without the user knowing.
    """
    path = Path(path)
    if not path.is_dir():
        return [path]
    files, others = [], []
    for root, dirs, names in os.walk(path, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            p = Path(root) / name
            (files if name.lower().endswith(JSONL_SUFFIXES) else others).append(p)
    if others:
        shown = ", ".join(str(p.relative_to(path)) for p in others[:5])
        more = f" and {len(others) - 5} more" if len(others) > 5 else ""
        raise UsageError(f"{path}: {len(others)} file(s) in the corpus folder are not {'/'.join(JSONL_SUFFIXES)}: "
                         f"{shown}{more} (move them out, or give the JSONL files' own folder)")
    if not files:
        raise UsageError(f"{path}: folder holds no {'/'.join(JSONL_SUFFIXES)} files")
    return sorted(files, key=lambda p: p.relative_to(path).parts)


def read_jsonl(path: str | os.PathLike, *, announce: bool = False) -> Iterator[Doc]:
    """Stream documents from a JSONL file (optionally gzipped) or a folder of them (see :func:`corpus_files`).

    ``announce`` says on stderr which files a folder stands for (the encode CLI sets it).
    """
    files = corpus_files(path)
    if announce and Path(path).is_dir():
        sub = sum(f.parent != Path(path) for f in files)
        print(f"corpus {path}: reading {len(files)} JSONL file(s)" + (f" ({sub} in subfolders)" if sub else "")
              + f": {files[0].relative_to(path)}" + (f" ... {files[-1].relative_to(path)}" if len(files) > 1 else ""),
              file=sys.stderr)
    for file in files:
        opener = gzip.open if file.name.endswith(".gz") else open
        for where, obj in iter_json_lines(file, opener):
            yield _jsonl_doc(obj, where)


def _jsonl_id(obj: dict, where: str) -> str:
    key = next((k for k in ID_KEYS if k in obj), None)
    if key is None:
        raise UsageError(f"{where}: missing 'id'")
    return _check_id(obj[key], where)


def _jsonl_doc(obj: dict, where: str) -> Doc:
    """One parsed JSONL line as a document: its id, and its title joined to its text or contents."""
    docid = _jsonl_id(obj, where)
    tkey = next((k for k in TEXT_KEYS if k in obj), None)
    if tkey is None:
        raise UsageError(f"{where}: document {docid!r} has no 'text' or 'contents'")
    title = obj.get("title")
    if title is not None and not isinstance(title, str):
        raise UsageError(f"{where}: 'title' of document {docid!r} must be a string")
    text = _check_text(obj[tkey], docid, where)
    return Doc(docid, join_title(title, text), where)


def jsonl_texts(spec: str):
    """``{docid: text}`` of a plain-JSONL corpus (a file or a folder) read from disk on demand
    (:class:`~.formats.jsonl.JsonlRecords`: an offsets table in memory, the texts stay in the files);
    None for any other corpus (gzipped JSONL, tarballs, ir_datasets), which has no random access."""
    from .formats.jsonl import JsonlRecords

    path = Path(spec)
    if not path.exists() or not (path.is_dir() or path.name.lower().endswith(JSONL_SUFFIXES)):
        return None
    try:
        files = corpus_files(path)
    except UsageError:
        return None
    if any(f.name.lower().endswith(".gz") for f in files):
        return None
    return JsonlRecords(files, _jsonl_id, lambda obj, where: _jsonl_doc(obj, where).text)


def _ir_dataset(dataset_id: str):
    """The ir_datasets object of ``dataset_id`` (its metadata only: nothing is downloaded yet)."""
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
    return ds


def network_reason(exc: BaseException) -> str:
    """The root cause of a failed download in a few words (``[Errno -2] Name or service not known``), with
    the host when the message names one: the chained exceptions of requests/urllib3 run to 4 tracebacks."""
    root = exc
    while (nxt := root.__cause__ or root.__context__) is not None and str(nxt):
        root = nxt
    host = re.search(r"host='([^']+)'", str(exc))
    text = " ".join(str(root).split())
    text = text if len(text) <= 160 else text[:157] + "..."
    return f"{host.group(1)}: {text}" if host else text


def is_network_error(exc: BaseException) -> bool:
    """A failed connection, name lookup or transfer (requests, urllib3, httpx, the socket layer), as opposed
    to a local file error, which keeps its own message."""
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    return type(exc).__module__.split(".")[0] in ("requests", "urllib3", "httpx", "httpx2", "socket", "ssl", "http")


def read_ir_datasets(dataset_id: str) -> Iterator[Doc]:
    """Stream ``doc_id, title, text`` documents of an ir_datasets id (e.g. ``neuclir/1/fa``), lazily imported.

    The id is checked at the call (an unknown id fails before anything else runs); the documents, and
    ir_datasets' download of them on first use, come at the first ``next``. A download that fails
    (offline, proxy, server) is one UsageError naming the dataset and the cause."""
    return _iter_ir_dataset(_ir_dataset(dataset_id), dataset_id)


def _iter_ir_dataset(ds, dataset_id: str) -> Iterator[Doc]:
    try:
        for n, d in enumerate(ds.docs_iter()):
            where = f"{dataset_id}#{n}"
            docid = _check_id(d.doc_id, where)
            body = getattr(d, "text", None)
            if body is None:
                body = getattr(d, "body", None) or getattr(d, "default_text")()
            yield Doc(docid, join_title(getattr(d, "title", None), _check_text(body, docid, where)), where)
    except (OSError, RuntimeError) as e:
        # ir_datasets tries its mirrors in turn and then raises RuntimeError("All download sources failed",
        # [(source, exception), ...]); a single source raises the network error itself.
        tried = e.args[1] if isinstance(e, RuntimeError) and len(e.args) > 1 and isinstance(e.args[1], list) else []
        causes = [t[-1] for t in tried if isinstance(t, tuple) and isinstance(t[-1], BaseException)] if tried else [e]
        if not causes or not all(is_network_error(c) for c in causes):
            raise
        home = os.environ.get("IR_DATASETS_HOME", "~/.ir_datasets")
        raise UsageError(f"ir_datasets {dataset_id!r}: download failed ({network_reason(causes[-1])}); connect to the "
                         f"network, or place the dataset's files under {home} (ir_datasets' INFO lines above "
                         "name them)") from None


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


def open_corpus(spec: str, *, announce: bool = False) -> Iterator[Doc]:
    """Stream the documents of ``--corpus`` (a path, ``irds:ID`` or a bare ir_datasets id).

    A folder's files are listed (and any non-JSONL file refused) now, not at the first ``next``."""
    if spec.startswith("irds:"):
        return read_ir_datasets(spec[len("irds:"):])
    path = Path(spec)
    if path.exists():
        name = path.name.lower()
        if path.is_file() and name.endswith((".tar.gz", ".tgz", ".tar")):
            return read_html_tarball(path)
        if path.is_dir() or name.endswith(JSONL_SUFFIXES):
            corpus_files(path)  # refuse a folder with non-JSONL files before any work starts
            return read_jsonl(path, announce=announce)
        raise UsageError(f"{spec}: unknown corpus format (expected {', '.join(JSONL_SUFFIXES)}, a folder of them, "
                         "or a .tar.gz of HTML files)")
    if "/" in spec and not spec.startswith((".", "/")):
        return read_ir_datasets(spec)
    raise UsageError(f"corpus {spec} does not exist (give a JSONL file, a folder, or irds:<ir_datasets id>)")


def count_documents(spec: str) -> int | None:
    """How many documents ``--corpus`` holds, where that is cheap: the non-blank lines of plain JSONL
    files (a byte scan, no JSON parsing), ir_datasets' own count; None for gzip files and tarballs
    (a decompression pass) and where the count is unknown. For a progress bar's total and ETA."""
    if spec.startswith("irds:") or (not Path(spec).exists() and "/" in spec and not spec.startswith((".", "/"))):
        try:
            import ir_datasets

            return ir_datasets.load(spec[len("irds:"):] if spec.startswith("irds:") else spec).docs_count()
        except Exception:  # noqa: BLE001 -- a count is a nicety; open_corpus reports real problems
            return None
    path = Path(spec)
    try:
        files = corpus_files(path)
    except UsageError:
        return None
    n = 0
    for f in files:
        if f.name.endswith(".gz") or not f.name.lower().endswith(JSONL_SUFFIXES):
            return None
        with open(f, "rb") as fh:
            for line in fh:  # buffered line iteration: ~1 GB/s, memory bounded by the longest line
                n += not line.isspace()
    return n


def fetch_texts(corpus: str, needed: set[str], of: str = "the run", hint: str = ": is it the run's corpus?"
                ) -> dict[str, str]:
    """The texts of the ``needed`` documents, from one streaming pass over ``corpus`` that stops once all are
    found; a missing one is a UsageError naming how many ``of`` whom (``hint`` ends the message)."""
    texts: dict[str, str] = {}
    if not needed:
        return texts
    with progress(total=len(needed), desc="fetch docs", unit="doc") as bar:
        for doc in open_corpus(corpus):
            if doc.id in needed and doc.id not in texts:
                texts[doc.id] = doc.text
                bar.update(1)
                if len(texts) == len(needed):
                    break
    missing = needed - texts.keys()
    if missing:
        raise UsageError(f"{len(missing)} documents of {of} are not in the corpus {corpus} "
                         f"(first: {sorted(missing)[0]!r}){hint}")
    return texts
