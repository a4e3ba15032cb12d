"""The local 2CR matrix (CACM: BM25, SPLADE-tiny, RRF) runs end to end and grades OK.

Each condition runs as real subprocesses (`python -m pyserini_splare.index|encode|search|fusion|eval`),
exactly as a user's `python -m pyserini_splare.repro local --all` does; expected scores are Anserini's
published CACM regression (BM25) and our own recorded measurements (docs/2cr.md).
"""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from pyserini_splare.repro import OK, load_matrix
from pyserini_splare.repro.__main__ import main


def test_local_matrix_grades_ok(shared_data, splade_tiny_path, tmp_path, capsys):
    report = tmp_path / "local.html"
    rc = main(["local", "--all", "--work-dir", str(tmp_path / "work"), "--threads", "2",
               "--generate-report", str(report)])
    out = capsys.readouterr().out
    stored = json.loads((tmp_path / "work" / "repro-results.json").read_text())["local"]
    m = load_matrix("local")
    assert {c.name for c in m.conditions} == set(stored) == {"cacm-bm25", "cacm-splade-tiny", "cacm-rrf"}
    assert stored["cacm-bm25"]["measured"] == pytest.approx({"AP": 0.3123, "P@30": 0.1942}, abs=5e-4)
    for name, r in stored.items():
        assert r["grade"] == OK, (name, r, out)
    assert rc == 0

    grades = []

    class P(HTMLParser):
        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "td" and "grade" in (a.get("class") or "").split():
                grades.append(True)

    P().feed(report.read_text(encoding="utf-8"))
    assert len(grades) == 3
