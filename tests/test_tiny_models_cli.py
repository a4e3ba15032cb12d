"""``python -m pyserini_splare.testing.tiny_models``: the local 2CR matrix's model builder.

Bad input is one error line with nothing written; the folders it writes are loaded by their kind's loader
and keep weights for every text (the two failures the matrix's first run caught: documents with 17,807 of
17,888 terms, and topics with none).
"""

from __future__ import annotations

import json

import pytest

from pyserini_splare.testing.tiny_models import main

TEXTS = ["sparse retrieval with learned term weights", "the cat sat on the mat", "inverted index compression",
         "query latency on two cores", "Lucene impact scores", "random words for a tokenizer"] * 3


def test_missing_corpus_is_one_error(tmp_path, capsys):
    rc = main(["--kind", "bge-m3", "--corpus", str(tmp_path / "nope.jsonl"), "--output", str(tmp_path / "m")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error:"), err
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["bge-m3", "opensearch"])
def test_built_folders_load_and_weigh_every_text(kind, tmp_path):
    from pyserini_splare.encode import load_encoder

    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"id": str(i), "contents": t}) + "\n" for i, t in enumerate(TEXTS)))
    assert main(["--kind", kind, "--corpus", str(corpus), "--output", str(tmp_path / "m")]) == 0
    enc = load_encoder(f"{kind}:{tmp_path / 'm'}")
    assert enc.spec()["type"] == kind
    docs, queries = enc.encode(TEXTS, "doc"), enc.encode(["sparse retrieval", "cat mat"], "query")
    assert all(len(v.ids) for v in docs + queries)
    vocab = enc.space.size
    assert max(len(v.ids) for v in docs) < vocab  # not the whole vocabulary
