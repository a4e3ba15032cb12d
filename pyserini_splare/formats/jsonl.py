"""JSONL reading with ``file:line`` errors: corpora, query vectors, vectors directories.

Lines are parsed with orjson (3-5x faster on 400-term vectors); a line it refuses is parsed again with
:mod:`json`, so the error message (and the handling of ``NaN`` / ``Infinity``) is the standard library's.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterator, Mapping

import orjson

from .._errors import UsageError


def parse_json_line(line: bytes | str, where: str) -> dict:
    """One JSON object from a line; malformed JSON or a non-object raises a one-line UsageError."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        if isinstance(line, bytes):
            try:  # orjson validates UTF-8 itself: decode only to name the failure
                line = line.decode("utf-8")
            except UnicodeDecodeError:
                raise UsageError(f"{where}: not valid UTF-8") from None
        # Without its line ending: json would report an error at the end of a truncated line as
        # "line 2 column 1" (the position after the newline), which names no character of the line.
        line = line.rstrip("\r\n")
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            detail = f"{e.msg.removesuffix(' at')} at column {e.pos + 1}"
            if e.pos >= len(line.rstrip()) or e.msg.startswith("Unterminated string"):
                raise UsageError(f"{where}: malformed JSON: the line ends after {len(line)} characters, inside a JSON "
                                 f"value ({detail}); truncated?") from None
            raise UsageError(f"{where}: malformed JSON ({detail})") from None
    if not isinstance(obj, dict):
        raise UsageError(f"{where}: expected a JSON object")
    return obj


def read_id(obj: dict, where: str, key: str = "id") -> str:
    """The record's id as a string: non-empty, no whitespace (TREC run files split on whitespace)."""
    if key not in obj:
        raise UsageError(f"{where}: missing {key!r}")
    i = obj[key]
    if type(i) is str and i.split() == [i]:
        return i  # the common case, without str() and a character loop
    if isinstance(i, bool) or not isinstance(i, (str, int)) or str(i).strip() == "" or any(c.isspace() for c in str(i)):
        raise UsageError(f"{where}: {key!r} must be a non-empty string without whitespace, got {i!r}")
    return str(i)


def open_input(path: str | os.PathLike, opener=open):
    """``opener(path, "rb")``, or a one-line UsageError naming the file (missing, unreadable)."""
    try:
        return opener(path, "rb")
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None


def iter_json_lines(path: str | os.PathLike, opener=open) -> Iterator[tuple[str, dict]]:
    """Stream ``(where, object)`` from a JSONL file, ``where`` being ``file:line``; blank lines are
    skipped, and non-UTF-8 bytes, malformed JSON or a non-object line raise a one-line UsageError."""
    path = Path(path)
    with open_input(path, opener) as f:
        for n, raw in enumerate(f, 1):
            if raw.isspace() or not raw:
                continue
            where = f"{path}:{n}"
            yield where, parse_json_line(raw, where)


# The id at the very start of a line as the writers write it ({"id": "..." first): read without
# parsing the rest of a 400-term line; any other line is parsed whole.
_LEADING_ID = re.compile(rb'\s*\{\s*"id"\s*:\s*"([^"\\\r\n]*)"\s*[,}]')


class JsonlRecords(Mapping):
    """Random access by record id to the records of plain (not gzipped) JSONL files: a read-only mapping.

    One scan keeps, per id, one int (the file's number and the line's byte offset); ``[id]`` reads that
    line back and returns ``value_of(parsed line, "file@offset")``. A server that looks a few
    documents up per request thus holds ids and ints, not every document's text or vector.
    ``id_of(obj, where)`` names a parsed record's id by the reader's own rules; a later line with the
    same id replaces an earlier one, as ``dict(records)`` would.
    """

    def __init__(self, files: list[Path], id_of, value_of):
        self.files = [Path(f) for f in files]
        self.value_of = value_of
        self._at: dict[str, int] = {}
        nfiles = len(self.files)
        for i, file in enumerate(self.files):
            with open_input(file) as f:
                off = 0
                for n, raw in enumerate(f, 1):
                    if raw.strip():
                        m = _LEADING_ID.match(raw)
                        if m is not None:
                            docid = id_of({"id": m.group(1).decode("utf-8", "replace")}, f"{file}:{n}")
                        else:
                            docid = id_of(parse_json_line(raw, f"{file}:{n}"), f"{file}:{n}")
                        self._at[docid] = off * nfiles + i
                    off += len(raw)

    def __len__(self) -> int:
        return len(self._at)

    def __iter__(self):
        return iter(self._at)

    def __contains__(self, docid) -> bool:
        return docid in self._at

    def __getitem__(self, docid: str):
        at = self._at.get(docid)
        if at is None:
            raise KeyError(docid)
        off, i = divmod(at, len(self.files))
        with open(self.files[i], "rb") as f:
            f.seek(off)
            raw = f.readline()
        where = f"{self.files[i]}@{off}"
        return self.value_of(parse_json_line(raw, where), where)
