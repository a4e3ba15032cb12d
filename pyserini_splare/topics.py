"""Topics and qrels: a registry of names -> files (reader, sha256, public URL), plus readers for files.

Names resolve under the data directory (``--data-dir``, ``$PYSERINI_SPLARE_DATA``, else
``~/.cache/pyserini_splare/topics-and-qrels``; docs/getting-started.md, "Data"). A missing file is fetched by
pooch and kept only when its sha256 matches, unless ``PYSERINI_SPLARE_OFFLINE=1`` (then the error names the
file, where it belongs and its URL). Any path works too: TSV, TREC SGML and Anserini's CACM format.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ._errors import UsageError, first_line

DATA_ENV = "PYSERINI_SPLARE_DATA"
OFFLINE_ENV = "PYSERINI_SPLARE_OFFLINE"
DEFAULT_DATA_DIR = Path.home() / ".cache" / "pyserini_splare" / "topics-and-qrels"

_WSDM = "https://wsdmcup-2026.github.io/resource/"
_ANSERINI_TOOLS = "https://raw.githubusercontent.com/castorini/anserini-tools/master/topics-and-qrels/"
_ANSERINI_CACM = "https://github.com/castorini/anserini/raw/master/src/main/resources/cacm/"


# --------------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not valid UTF-8") from None
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None


def read_tsv_topics(path: Path) -> dict[str, str]:
    """``qid<TAB>text`` per line; a first line ``query_id<TAB>...`` is a header and skipped."""
    topics: dict[str, str] = {}
    for n, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 2:
            raise UsageError(f"{path}:{n}: expected 'qid<TAB>text'")
        qid, text = parts[0].strip(), "\t".join(parts[1:]).strip()
        if n == 1 and qid.lower() in ("query_id", "qid", "id"):
            continue
        if qid in topics:
            raise UsageError(f"{path}:{n}: duplicate topic id {qid!r}")
        topics[qid] = text
    return topics


_CACM_DOC = re.compile(r"<DOC>\s*<DOCNO>\s*(\S+)\s*</DOCNO>(.*?)</DOC>", re.S)


def read_cacm_topics(path: Path) -> dict[str, str]:
    """Anserini's CACM topic format (what ``CacmTopicReader`` reads): ``<DOC><DOCNO> n </DOCNO> text </DOC>``."""
    topics = {m.group(1): " ".join(m.group(2).split()) for m in _CACM_DOC.finditer(_read_text(path))}
    if not topics:
        raise UsageError(f"{path}: no <DOC><DOCNO>...</DOC> topics found")
    return topics


_TREC_TOP = re.compile(r"<top>(.*?)</top>", re.S | re.I)
_TREC_FIELD = re.compile(r"<(num|title|desc|narr)>(.*?)(?=<(?:num|title|desc|narr)>|$)", re.S | re.I)


def read_trec_topics(path: Path, field: str = "title") -> dict[str, str]:
    """TREC SGML topics (``<top><num> Number: 401 <title> ... <desc> Description: ...``)."""
    topics = {}
    for block in _TREC_TOP.findall(_read_text(path)):
        fields = {k.lower(): v for k, v in _TREC_FIELD.findall(block)}
        num = re.sub(r"^\s*Number:\s*", "", fields.get("num", ""), flags=re.I).strip()
        text = fields.get(field, "")
        text = re.sub(r"^\s*(Topic|Description|Narrative):\s*", "", text, flags=re.I)
        if num:
            topics[num] = " ".join(text.split())
    if not topics:
        raise UsageError(f"{path}: no <top> topics found")
    return topics


def sniff_topics(path: Path) -> dict[str, str]:
    """Read a topics file of any supported format, chosen by its content."""
    head = _read_text(path)[:4096]
    if re.search(r"<top>", head, re.I):
        return read_trec_topics(path)
    if "<DOCNO>" in head:
        return read_cacm_topics(path)
    return read_tsv_topics(path)


@dataclass
class Qrels:
    """Judgments ``{qid: {docid: grade}}``; ``langs`` keeps the WSDM Cup's language column."""

    judgments: dict[str, dict[str, int]]
    langs: dict[str, str]

    def __len__(self) -> int:
        return len(self.judgments)


_LANGS = {"fas", "rus", "zho", "fa", "ru", "zh", "eng", "en"}


def read_qrels(path: Path) -> Qrels:
    """TREC qrels ``qid iter docid grade``. In the WSDM Cup qrels the second column is the document's
    language (``fas``/``rus``/``zho``); it is kept in ``langs`` (TREC tools ignore that column)."""
    judgments: dict[str, dict[str, int]] = {}
    langs: dict[str, str] = {}
    for n, line in enumerate(_read_text(path).splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 4:
            raise UsageError(f"{path}:{n}: expected 4 columns 'qid iter docid grade', got {len(parts)}")
        qid, second, docid, grade = parts
        try:
            g = int(grade)
        except ValueError:
            raise UsageError(f"{path}:{n}: grade {grade!r} is not an integer") from None
        judgments.setdefault(qid, {})[docid] = g
        if second in _LANGS:
            langs[docid] = second
    if not judgments:
        raise UsageError(f"{path}: no judgments")
    return Qrels(judgments, langs)


_CACM_UNPADDED = re.compile(r"CACM-(\d{1,3})")


def read_cacm_qrels(path: Path) -> Qrels:
    """Anserini's ``qrels.cacm.txt`` with its 55 unpadded docids (``CACM-115``) read as the collection's
    (``CACM-0115``, the member names of ``cacm.tar.gz``), said in one notice line on stderr: as written
    they match no document, so those judgments count as relevant documents no system can retrieve, and
    mining training data from them fails. Anserini's published CACM scores (AP 0.3123) were computed
    on the file as written: the registry name ``cacm-anserini`` reads it so."""
    import sys

    qrels = read_qrels(path)
    fixed, n, example = {}, 0, ""
    for qid, docs in qrels.judgments.items():
        out = fixed[qid] = {}
        for docid, grade in docs.items():
            m = _CACM_UNPADDED.fullmatch(docid)
            if m:
                n += 1
                example = example or docid
                docid = f"CACM-{int(m.group(1)):04d}"
            out[docid] = max(grade, out.get(docid, grade))
    if n:
        print(f"notice: {path.name}: {n} judgments name unpadded CACM docids (e.g. {example}), read as the "
              f"collection's zero-padded ids; --qrels cacm-anserini keeps them as written (Anserini's published "
              f"scores)", file=sys.stderr)
    return Qrels(fixed, qrels.langs)


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataFile:
    name: str
    path: str  # relative to the data dir
    sha256: str
    url: str
    description: str
    reader: Callable[[Path], object]
    aliases: tuple[str, ...] = ()


TOPICS: dict[str, DataFile] = {}
QRELS: dict[str, DataFile] = {}
FILES: dict[str, DataFile] = {}  # other files (collections) the registry knows


def _add(table: dict, entry: DataFile) -> None:
    for key in (entry.name, *entry.aliases):
        if key in table:
            raise ValueError(f"duplicate registry name {key}")
        table[key] = entry


_add(TOPICS, DataFile(
    "wsdm-cup-2026-dev", "wsdm-cup-2026/wsdm-cup.dev.queries.tsv",
    "31b8ceffcdf009be0d429341257df0dd9feba2b8a943855090f84aa041a1acb1", _WSDM + "wsdm-cup.dev.queries.tsv",
    "WSDM Cup 2026 dev queries (41, title + description) over NeuCLIR1 fa/ru/zh; the seeds' evaluation set",
    read_tsv_topics, aliases=("neuclir", "wsdm26-dev")))
_add(TOPICS, DataFile(
    "wsdm-cup-2026-test", "wsdm-cup-2026/wsdm-cup.test.queries.tsv",
    "2127452526a7dad7ab27ad42dcf87d2bbd5295a115fd2199873898017fc9cce4", _WSDM + "wsdm-cup.test.queries.tsv",
    "WSDM Cup 2026 test queries (105), no public qrels", read_tsv_topics, aliases=("wsdm26-test",)))
for field, sha in [
    ("title", "728b1ccba4960dbbcda14dd38a5c841dc96015171b2434583f5896e4e53c5623"),
    ("desc", "9620a6d097d0867953d21f565b27939b624af54ba49ae765e07a2cc9f04e4537"),
    ("desc.title", "16387e38d9c73de270a542f640363a3432385c4b565901bf7baaff97a9dbc542"),
]:
    fname = f"topics.neuclir22.en.{field}.tsv"
    _add(TOPICS, DataFile(
        f"neuclir22-en-{field.replace('.', '-')}", f"neuclir22/{fname}", sha, _ANSERINI_TOOLS + fname,
        f"TREC NeuCLIR 2022 English topics ({field})", read_tsv_topics))
_add(TOPICS, DataFile(
    "cacm", "cacm/topics.cacm.txt", "1dc7b94fbf4adeb0c49be44fc6d7802ddc7bc4ad1b869013af10d09b44019799",
    _ANSERINI_TOOLS + "topics.cacm.txt", "CACM topics (64, 52 judged), Anserini's format", read_cacm_topics))

_add(QRELS, DataFile(
    "wsdm-cup-2026-dev", "wsdm-cup-2026/wsdm-cup.dev.qrels",
    "a0c3a5467ccc97b8f673eeed34ed58adb4d74118ab2c68f713b4cf549e8eb807", _WSDM + "wsdm-cup.dev.qrels",
    "WSDM Cup 2026 dev qrels (qid lang docid grade; grades 0/1/3)", read_qrels, aliases=("neuclir", "wsdm26-dev")))
for lang, sha in [
    ("fa", "e6f0f1e26059c8fe68373257bbc78fa1e870d0d3b1f31be896ff239dcb4107cc"),
    ("ru", "f9c838458da5565de7dcd4e78d53b3881aaba8eb8dc1561b2dae507ed1bf7ac9"),
    ("zh", "7b5c262dfd560164a3670eefc567722722d9b0cc36d627368de584fa6860b1ad"),
]:
    fname = f"qrels.neuclir22-{lang}.txt"
    _add(QRELS, DataFile(f"neuclir22-{lang}", f"neuclir22/{fname}", sha, _ANSERINI_TOOLS + fname,
                         f"TREC NeuCLIR 2022 qrels, {lang} documents", read_qrels))
_add(QRELS, DataFile(
    "cacm", "cacm/qrels.cacm.txt", "359f77ee6aab89333745a7f25f56370268a493abe1baff76979ad37a4d5428ef",
    _ANSERINI_TOOLS + "qrels.cacm.txt", "CACM qrels, docids zero-padded as in the collection (CACM-0115)",
    read_cacm_qrels))
_add(QRELS, DataFile(
    "cacm-anserini", "cacm/qrels.cacm.txt", "359f77ee6aab89333745a7f25f56370268a493abe1baff76979ad37a4d5428ef",
    _ANSERINI_TOOLS + "qrels.cacm.txt", "CACM qrels as Anserini publishes them (55 unpadded docids such as "
    "CACM-115 match no document; Anserini's regression scores use them so)", read_qrels))
_add(FILES, DataFile(
    "cacm-collection", "cacm/cacm.tar.gz", "4e318d8920a384dfe11f81410abdc19d96a0e23e5fb7832c385be75c7cb75bf9",
    _ANSERINI_CACM + "cacm.tar.gz", "CACM: 3,204 abstracts as HTML (Anserini's HtmlCollection)", lambda p: p))


def data_dir(override: str | os.PathLike | None = None) -> Path:
    if override:
        return Path(override)
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    return DEFAULT_DATA_DIR


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read 1 MiB at a time (the registry's checksums; train's resume identity)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download(entry: DataFile, target: Path) -> None:
    """Fetch ``entry.url`` to ``target`` through pooch, checked against the registry's sha256."""
    import logging

    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)  # its "Downloading data from ..." line: the command says what it needs
    try:
        pooch.retrieve(entry.url, known_hash=f"sha256:{entry.sha256}", fname=target.name, path=target.parent,
                       progressbar=False)
    except ValueError:  # pooch's checksum mismatch (it has already removed the download)
        raise UsageError(f"{entry.url}: the download's sha256 differs from the registry's ({entry.sha256[:12]}...); "
                         f"not kept") from None
    finally:
        logger.setLevel(level)


def _closest(name: str, table: dict) -> str:
    close = difflib.get_close_matches(name, list(table), n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return hint + " (--list-topics lists all names)"


def locate(entry: DataFile, data: str | os.PathLike | None = None) -> Path:
    """The registry file's path in the data dir, downloading it if missing and allowed."""
    target = data_dir(data) / entry.path
    if target.is_file():
        return target
    if os.environ.get(OFFLINE_ENV) == "1":
        reason = f"{OFFLINE_ENV}=1"
    else:
        try:
            _download(entry, target)
            return target
        except UsageError:
            raise
        except OSError as e:  # requests' errors (offline, DNS, HTTP status) are OSErrors
            reason = f"download failed: {first_line(e)}"
    raise UsageError(f"{entry.name}: {target} is missing ({reason}); get it from {entry.url} "
                     f"(sha256 {entry.sha256[:12]}...) or point {DATA_ENV}/--data-dir at a folder that has {entry.path}")


# A name with one of these endings means a file (no registry name has a dot), so a missing one is
# reported as a missing file, not as an unknown name with far-fetched suggestions.
_FILE_SUFFIXES = (".tsv", ".txt", ".xml", ".sgml", ".trec", ".json", ".jsonl", ".gz", ".qrels", ".topics")


def _looks_like_path(spec: str) -> bool:
    return os.sep in spec or Path(spec).exists() or spec.lower().endswith(_FILE_SUFFIXES)


def _registered_or_file(spec: str, table: dict, what: str, read_file, data) -> object:
    if spec in table:
        entry = table[spec]
        return entry.reader(locate(entry, data))
    if _looks_like_path(spec):
        p = Path(spec)
        if p.is_dir():
            raise UsageError(f"{what} {p} is a folder; give a {what} file or a registry name")
        if not p.is_file():
            raise UsageError(f"{what} file {p} does not exist")
        return read_file(p)
    raise UsageError(f"unknown {what} {spec!r}{_closest(spec, table)}")


def get_topics(spec: str, data: str | os.PathLike | None = None) -> dict[str, str]:
    """Topics ``{qid: text}`` from a registry name or alias (``neuclir``) or a file on disk."""
    return _registered_or_file(spec, TOPICS, "topics", sniff_topics, data)


def get_qrels(spec: str, data: str | os.PathLike | None = None) -> Qrels:
    return _registered_or_file(spec, QRELS, "qrels", read_qrels, data)


def get_file(name: str, data: str | os.PathLike | None = None) -> Path:
    if name not in FILES:
        raise UsageError(f"unknown data file {name!r}{_closest(name, FILES)}")
    return locate(FILES[name], data)


def list_registry() -> str:
    """A table of every registered name, for ``--list-topics``."""
    lines = []
    for title, table in (("topics", TOPICS), ("qrels", QRELS), ("files", FILES)):
        lines.append(f"{title}:")
        seen = set()
        for key, e in table.items():
            if id(e) in seen:
                continue
            seen.add(id(e))
            alias = f" (aliases: {', '.join(e.aliases)})" if e.aliases else ""
            lines.append(f"  {e.name:<24} {e.description}{alias}")
    return "\n".join(lines)
