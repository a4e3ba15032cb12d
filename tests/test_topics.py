"""Topics and qrels registry against the real files in ../shared/data."""

import hashlib

import pytest

from pyserini_splare._errors import UsageError
from pyserini_splare.topics import QRELS, TOPICS, get_qrels, get_topics, read_trec_topics
from pyserini_splare.search.__main__ import main as search_main


def test_neuclir_alias_is_the_41_wsdm_dev_queries_verbatim(shared_data):
    topics = get_topics("neuclir")
    # Independent reading of the file: header line, then qid<TAB>text.
    lines = (shared_data / "wsdm-cup-2026" / "wsdm-cup.dev.queries.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "query_id\tquery"
    expect = dict(line.split("\t", 1) for line in lines[1:] if line)
    assert len(topics) == 41
    assert topics == expect
    assert topics["0"] == ("Iranian female athletes refugees I am looking for stories about Iranian female "
                           "athletes who seek asylum in other countries.")


def test_every_registered_file_matches_its_checksum(shared_data):
    for entry in {id(e): e for e in [*TOPICS.values(), *QRELS.values()]}.values():
        data = (shared_data / entry.path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry.sha256, entry.name
        assert entry.url.startswith("https://")


def test_wsdm_qrels_language_column(shared_data):
    q = get_qrels("neuclir")
    assert len(q) == 41
    n_lines = sum(1 for line in (shared_data / "wsdm-cup-2026" / "wsdm-cup.dev.qrels").open() if line.strip())
    assert sum(len(d) for d in q.judgments.values()) == n_lines
    assert set(q.langs.values()) == {"fas", "rus", "zho"}
    assert q.judgments["5"]["2fa789e9-9d04-443e-a2de-45f160c9daa9"] == 3
    assert q.langs["2fa789e9-9d04-443e-a2de-45f160c9daa9"] == "fas"
    assert {g for d in q.judgments.values() for g in d.values()} == {0, 1, 3}


def test_other_registered_sets(shared_data):
    assert len(get_topics("cacm")) == 64
    assert len(get_qrels("cacm")) == 52
    assert get_topics("cacm")["3"] == "Intermediate languages used in construction of multi-targeted compilers; TCOLL"
    assert len(get_topics("neuclir22-en-title")) == 114
    assert get_topics("neuclir22-en-title")["0"] == "Iranian female athletes refugees"
    assert len(get_topics("wsdm26-test")) == 105
    for lang in ("fa", "ru", "zh"):
        assert len(get_qrels(f"neuclir22-{lang}")) > 40


def test_files_on_disk(tmp_path):
    tsv = tmp_path / "t.tsv"
    tsv.write_text("1\tfirst query\n2\tsecond\tquery\n")
    assert get_topics(str(tsv)) == {"1": "first query", "2": "second\tquery"}
    sgml = tmp_path / "t.sgml"
    sgml.write_text("<top>\n<num> Number: 401\n<title> foreign minorities, Germany\n\n<desc> Description:\n"
                    "What language?\n<narr> Narrative:\nA relevant document\n</top>\n")
    assert get_topics(str(sgml)) == {"401": "foreign minorities, Germany"}
    assert read_trec_topics(sgml, "desc") == {"401": "What language?"}


def test_unknown_names_suggest_close_ones():
    with pytest.raises(UsageError, match="did you mean neuclir"):
        get_topics("neuclr")
    with pytest.raises(UsageError, match="unknown qrels"):
        get_qrels("no-such-qrels")


def test_missing_file_offline_names_file_and_url(tmp_path):
    with pytest.raises(UsageError) as e:
        get_topics("neuclir", data=tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "wsdm-cup-2026" / "wsdm-cup.dev.queries.tsv") in msg
    assert "https://wsdmcup-2026.github.io/resource/wsdm-cup.dev.queries.tsv" in msg
    assert "\n" not in msg


def test_list_topics_cli(capsys):
    assert search_main(["--list-topics"]) == 0
    out = capsys.readouterr().out
    assert "neuclir" in out and "cacm" in out and "neuclir22-fa" in out


def test_unknown_topics_cli_exit_2(capsys, tmp_path):
    rc = search_main(["--index", str(tmp_path), "--topics", "neuclr", "--output", str(tmp_path / "r.txt")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1


@pytest.mark.parametrize("spec, msg", [("missing.tsv", "topics file missing.tsv does not exist"),
                                       ("runs/q.txt", "does not exist"), ("neuclr", "did you mean neuclir")])
def test_missing_topics_file_vs_unknown_name(spec, msg, tmp_path, monkeypatch):
    """A name with a file ending is a missing file, not an unknown registry name."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match=msg):
        get_topics(spec)
    with pytest.raises(UsageError, match="is a folder"):
        get_topics(str(tmp_path))


@pytest.fixture
def http_folder(tmp_path, monkeypatch):
    """A folder served over HTTP on localhost (no internet), the registry's offline switch off."""
    import functools
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.delenv("PYSERINI_SPLARE_OFFLINE", raising=False)
    yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_download_is_checked_against_the_registry_sha256(http_folder, tmp_path):
    from pyserini_splare.topics import DataFile, locate, read_tsv_topics

    served, url = http_folder
    body = b"q1\tfirst query\nq2\tsecond query\n"
    (served / "q.tsv").write_bytes(body)
    good = DataFile("toy", "toy/q.tsv", hashlib.sha256(body).hexdigest(), url + "q.tsv", "toy", read_tsv_topics)
    data = tmp_path / "data"
    path = locate(good, data)
    assert path == data / "toy" / "q.tsv" and path.read_bytes() == body
    assert read_tsv_topics(path) == {"q1": "first query", "q2": "second query"}
    # A file that does not match its checksum is refused in one line and not kept.
    bad = DataFile("toy2", "toy2/q.tsv", "0" * 64, url + "q.tsv", "toy", read_tsv_topics)
    with pytest.raises(UsageError, match=r"q\.tsv: the download's sha256 differs from the registry's "
                                         r"\(000000000000\.\.\.\); not kept") as e:
        locate(bad, data)
    assert "\n" not in str(e.value) and not list((data / "toy2").glob("*"))
    # A server error is a download failure naming the file, where it goes and where to get it.
    gone = DataFile("toy3", "toy3/q.tsv", "0" * 64, url + "missing.tsv", "toy", read_tsv_topics)
    with pytest.raises(UsageError, match=r"toy3: .*toy3/q\.tsv is missing \(download failed: .*404") as e:
        locate(gone, data)
    assert "\n" not in str(e.value)
