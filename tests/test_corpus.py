"""Corpus readers: JSONL (files, folders, gzip), CACM's HTML tarball, validation with file:line."""

from __future__ import annotations

import gzip
import json

import pytest

from pyserini_splare._errors import UsageError
from pyserini_splare.corpus import count_documents, html_to_text, open_corpus, read_html_tarball, read_jsonl
from pyserini_splare.formats.idhash import IdHashSet, find_repeated


def _write(path, lines):
    path.write_bytes(b"".join((json.dumps(x).encode() if isinstance(x, dict) else x) + b"\n" for x in lines))
    return path


def test_jsonl_title_text_and_contents(tmp_path):
    p = _write(tmp_path / "c.jsonl", [{"id": "a", "title": "T", "text": "body"}, {"id": 7, "contents": "only"},
                                      {"docid": "c", "title": "", "text": "x"}])
    docs = list(open_corpus(str(p)))
    assert [(d.id, d.text) for d in docs] == [("a", "T body"), ("7", "only"), ("c", "x")]
    assert docs[1].where == f"{p}:2"


def test_folder_and_gzip(tmp_path):
    d = tmp_path / "corpus"
    d.mkdir()
    _write(d / "b.jsonl", [{"id": "2", "text": "two"}])
    with gzip.open(d / "a.jsonl.gz", "wb") as f:
        f.write(b'{"id": "1", "text": "one"}\n')
    (d / ".hidden").write_text("ignored: hidden files are never documents")
    assert [x.id for x in read_jsonl(d)] == ["1", "2"]


def test_folder_reads_subfolders_in_path_order(tmp_path, capsys):
    d = tmp_path / "corpus"
    (d / "b").mkdir(parents=True)
    (d / "a" / "deep").mkdir(parents=True)
    _write(d / "z.jsonl", [{"id": "z", "text": "t"}])
    _write(d / "b" / "1.jsonl", [{"id": "b1", "text": "t"}])
    _write(d / "a" / "deep" / "2.json", [{"id": "a2", "text": "t"}])
    _write(d / "a" / "1.jsonl", [{"id": "a1", "text": "t"}])
    assert [x.id for x in open_corpus(str(d), announce=True)] == ["a1", "a2", "b1", "z"]
    err = capsys.readouterr().err
    assert "reading 4 JSONL file(s) (3 in subfolders)" in err


@pytest.mark.parametrize("stray", ["notes.txt", "sub/readme.md", "data.csv", "sub/deeper/x.tsv"])
def test_folder_with_non_jsonl_files_is_refused_by_name(tmp_path, stray):
    """The class of input: any regular non-hidden file that is not JSONL, at any depth, is named, not skipped."""
    d = tmp_path / "corpus"
    d.mkdir()
    _write(d / "a.jsonl", [{"id": "1", "text": "one"}])
    (d / stray).parent.mkdir(parents=True, exist_ok=True)
    (d / stray).write_text("x")
    with pytest.raises(UsageError, match=r"1 file\(s\) in the corpus folder are not .*" + stray.replace(".", r"\.")):
        open_corpus(str(d))


@pytest.mark.parametrize("line, msg", [
    (b'{"text": "no id"}', "c.jsonl:2: missing 'id'"),
    (b'{"id": "x", "text": "  "}', "c.jsonl:2: document 'x' has empty text"),
    (b'{"id": "x"}', "has no 'text' or 'contents'"),
    (b'{"id": "x", "text": "caf\xe9"}', "c.jsonl:2: not valid UTF-8"),
    (b'{"id": "x y", "text": "t"}', "without whitespace"),
    (b'not json', "c.jsonl:2: malformed JSON"),
])
def test_bad_lines_name_file_and_line(tmp_path, line, msg):
    p = _write(tmp_path / "c.jsonl", [{"id": "ok", "text": "fine"}, line])
    with pytest.raises(UsageError, match=msg.replace(".", r"\.").replace("(", r"\(")):
        list(read_jsonl(p))


def test_missing_corpus_and_unknown_format(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        open_corpus(str(tmp_path / "nope.jsonl"))
    (tmp_path / "x.csv").write_text("a,b")
    with pytest.raises(UsageError, match="unknown corpus format"):
        open_corpus(str(tmp_path / "x.csv"))


def test_duplicates_found_with_both_places(tmp_path):
    p = _write(tmp_path / "c.jsonl", [{"id": i, "text": "t"} for i in ("a", "b", "c", "b")])
    chk = IdHashSet()
    for d in read_jsonl(p):
        chk.add(d.id)
    dups = chk.duplicates()
    assert len(dups) == 1
    assert find_repeated(((d.id, d.where) for d in read_jsonl(p)), dups) == f"{p}:4: duplicate document id 'b' (first at {p}:2)"


def test_html_to_text():
    assert html_to_text("<html><pre>\nA &amp; B\n\n<b>c</b></pre></html>") == "A & B c"


def test_cacm_tarball(shared_data):
    docs = list(read_html_tarball(shared_data / "cacm" / "cacm.tar.gz"))
    assert len(docs) == 3204
    assert docs[0].id == "CACM-0001" and docs[0].text.startswith("Preliminary Report-International Algebraic Language")
    assert len({d.id for d in docs}) == 3204


def test_count_documents_equals_what_is_read(tmp_path):
    d = tmp_path / "corpus"
    (d / "sub").mkdir(parents=True)
    _write(d / "a.jsonl", [{"id": str(i), "text": "t"} for i in range(7)] + [b"   "])  # a blank line is no document
    _write(d / "sub" / "b.jsonl", [{"id": f"b{i}", "text": "t"} for i in range(5)])
    assert count_documents(str(d)) == len(list(open_corpus(str(d)))) == 12
    assert count_documents(str(d / "a.jsonl")) == 7
    with gzip.open(tmp_path / "c.jsonl.gz", "wb") as f:
        f.write(b'{"id": "1", "text": "one"}\n')
    assert count_documents(str(tmp_path / "c.jsonl.gz")) is None  # would cost a decompression pass
