"""explain: top features with weights and Neuronpedia labels, from SparseVectors and stored vectors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pyserini_splare._errors import UsageError
from pyserini_splare.explain import NO_LABEL, Row, explain_vector, format_rows, load_labels
from pyserini_splare.explain.__main__ import main
from pyserini_splare.vectors import PrefixedSpace, SparseVector, VocabSpace, VectorsWriter

LABELS = [  # Neuronpedia explanation export shape
    {"modelId": "llama3.1-8b", "layer": "26-llamascope-res-131k", "index": "7", "description": "capital cities",
     "explanationModelName": "gpt-4o-mini", "typeName": "oai_token-act-pair"},
    {"modelId": "llama3.1-8b", "layer": "26-llamascope-res-131k", "index": "42", "description": "economic  sanctions"},
    {"modelId": "llama3.1-8b", "layer": "26-llamascope-res-131k", "index": "42", "description": "second explanation"},
    {"modelId": "llama3.1-8b", "layer": "26-llamascope-res-131k", "index": 900, "description": "Iran"},
]


def test_explain_sparse_vector_with_labels():
    space = PrefixedSpace("L", 1000)
    v = SparseVector(np.array([3, 7, 42, 500, 900]), np.array([0.5, 2.0, 3.5, 2.0, 1.0], np.float32))
    labels = {7: "capital cities", 42: "economic sanctions", 900: "Iran"}
    rows = explain_vector(v, space, labels, top=4)
    # weight desc, ties by term: L500 and L7 tie at 2.0 ("L500" < "L7")
    assert rows == [Row(1, 42, "L42", 3.5, "economic sanctions"), Row(2, 500, "L500", 2.0, None),
                    Row(3, 7, "L7", 2.0, "capital cities"), Row(4, 900, "L900", 1.0, "Iran")]
    table = format_rows(rows, width=10).splitlines()
    assert table[0].split() == ["1", "L42", "█" * 10, "3.500", "economic", "sanctions"]
    assert "█" * 6 + " " in table[1] and table[1].endswith(NO_LABEL)  # round(10 * 2.0 / 3.5) = 6
    assert table[3].count("█") == 3  # round(10 * 1.0 / 3.5)


def test_vocab_space_and_mapping_input():
    space = VocabSpace(["[PAD]", "cat", "dog", "mat"])
    rows = explain_vector(SparseVector(np.array([1, 3]), np.array([1.0, 2.0], np.float32)), space, top=5)
    assert [(r.term, r.weight, r.label) for r in rows] == [("mat", 2.0, None), ("cat", 1.0, None)]
    rows = explain_vector({"L5": 1.0, "L12": 4.0, "x": 2.0}, None, {12: "twelve"}, top=2)
    assert [(r.feature, r.term, r.label) for r in rows] == [(12, "L12", "twelve"), (None, "x", None)]
    with pytest.raises(ValueError):
        explain_vector({"L1": 1.0}, top=0)


def test_load_labels_json_and_jsonl(tmp_path):
    a = tmp_path / "labels.json"
    a.write_text(json.dumps(LABELS))
    b = tmp_path / "labels.jsonl"
    b.write_text("".join(json.dumps(x) + "\n" for x in LABELS))
    expected = {7: "capital cities", 42: "economic sanctions", 900: "Iran"}  # first explanation wins
    assert load_labels(a) == load_labels(b) == expected


@pytest.mark.parametrize("entries,needle", [
    ([{"description": "no id"}], "entry 1: missing 'index'"),
    ([{"index": "3"}], "missing 'description'"),
    ([{"index": "three", "description": "x"}], "non-negative integer"),
    ([{"index": "1", "description": "a", "layer": "a"}, {"index": "2", "description": "b", "layer": "b"}], "--layer"),
    ([], "no labels"),
])
def test_bad_labels(tmp_path, entries, needle):
    p = tmp_path / "l.json"
    p.write_text(json.dumps(entries))
    with pytest.raises(UsageError, match=needle.replace("(", r"\(")):
        load_labels(p)


def test_layer_filter(tmp_path):
    p = tmp_path / "l.jsonl"
    p.write_text(json.dumps({"index": "1", "description": "a", "layer": "A"}) + "\n"
                 + json.dumps({"index": "1", "description": "b", "layer": "B"}) + "\n")
    assert load_labels(p, layer="B") == {1: "b"}


def test_cli_stored_vector_dir_and_jsonl(tmp_path, capsys):
    space = PrefixedSpace("L", 1000)
    with VectorsWriter(tmp_path / "vec", space, 100) as w:
        w.write("d1", SparseVector(np.array([7, 42, 900]), np.array([1.5, 0.25, 3.0], np.float32)))
        w.write("d2", SparseVector(np.array([1]), np.array([1.0], np.float32)))
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps(LABELS))
    assert main(["--vector-file", str(tmp_path / "vec"), "--id", "d1", "--labels", str(labels), "--json"]) == 0
    got = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    # stored integer weights round(w * 100) shown divided by the scale
    assert got == [{"rank": 1, "feature": 900, "term": "L900", "weight": 3.0, "label": "Iran"},
                   {"rank": 2, "feature": 7, "term": "L7", "weight": 1.5, "label": "capital cities"},
                   {"rank": 3, "feature": 42, "term": "L42", "weight": 0.25, "label": "economic sanctions"}]
    q = tmp_path / "q.jsonl"
    q.write_text(json.dumps({"id": "q1", "vector": {"L3": 0.7, "L7": 0.9}}) + "\n")
    assert main(["--vector-file", str(q), "--id", "q1", "--labels", str(labels), "--top", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and "L7" in out[0] and out[0].endswith("capital cities")


def test_cli_errors(tmp_path, capsys):
    q = tmp_path / "q.jsonl"
    q.write_text(json.dumps({"id": "q1", "vector": {"L3": 0.7}}) + "\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"index": "1", "description": "a"}) + "\n" + json.dumps({"label": "x"}) + "\n")
    for argv, needle in [
        (["--vector-file", str(q), "--id", "q1", "--labels", str(bad)], "bad.jsonl:2: missing 'index'"),
        (["--vector-file", str(q), "--id", "nope"], "no vector with id"),
        (["--vector-file", str(q)], "needs --id"),
        (["--query", "x"], "need --encoder"),
        (["--query", "x", "--doc", "y"], "exactly one"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and needle in err, err


def test_cli_encoder_path_with_real_splade_tiny(capsys, splade_tiny_path):
    """--encoder: the table lists the encoder's own strongest terms (SPLADE-tiny, vocabulary terms, no labels)."""
    path = splade_tiny_path
    from pyserini_splare.encode import load_encoder

    text = "the cat sat on the mat"
    assert main(["--encoder", f"splade:{path}", "--query", text, "--top", "5", "--json"]) == 0
    got = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    enc = load_encoder(f"splade:{path}")
    v = enc.encode([text], "query")[0]
    order = sorted(range(len(v.ids)), key=lambda i: (-float(v.weights[i]), enc.space.term(int(v.ids[i]))))[:5]
    assert [(g["term"], g["feature"]) for g in got] == [(enc.space.term(int(v.ids[i])), int(v.ids[i])) for i in order]
    np.testing.assert_allclose([g["weight"] for g in got], [float(v.weights[i]) for i in order], rtol=1e-6)
    assert "cat" in [g["term"] for g in got]
