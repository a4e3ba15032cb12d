"""Qwen3-Embedding encoder on a tiny random Qwen3 model; the dense vectors directory format."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pyserini_splare._errors import UsageError
from pyserini_splare.encode.dense import load_qwen3_embed
from pyserini_splare.formats.vectors_meta import DENSE_FORMAT, read_meta
from pyserini_splare.formats.vectors_reader import open_collection
from pyserini_splare.formats.vectors_writer import VectorsWriter

TEXTS = ["a b c d e f g h", "retrieval", "sparse dense hybrid search systems", "the cat"]


@pytest.fixture(scope="module")
def tiny_qwen3(tmp_path_factory):
    """A Qwen3-shaped model with random weights and a word-level tokenizer trained here (no downloads)."""
    from pyserini_splare.testing.tiny_models import qwen3_embedder

    return qwen3_embedder(tmp_path_factory.mktemp("qwen3"), TEXTS)


def test_last_token_pooling_under_left_padding(tiny_qwen3):
    import torch

    enc = load_qwen3_embed(str(tiny_qwen3), batch_size=4)
    assert enc.tokenizer.padding_side == "left"
    got = enc.encode(TEXTS, "doc")
    assert got.shape == (4, 32) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1, atol=1e-6)
    # Reference: each text alone, unpadded; its last token is <|endoftext|>; L2-normalized.
    for text, row in zip(TEXTS, got):
        ids = enc.tokenizer(text)["input_ids"]
        ids = ids + [enc.eos_id] if ids[-1:] != [enc.eos_id] else ids
        with torch.no_grad():
            h = enc.model(input_ids=torch.tensor([ids])).last_hidden_state[0, -1]
        np.testing.assert_allclose(row, (h / h.norm()).numpy(), atol=1e-5)


def test_query_instruction(tiny_qwen3):
    enc = load_qwen3_embed(str(tiny_qwen3))
    assert enc.format("cats", "query") == ("Instruct: Given a web search query, retrieve relevant passages that "
                                           "answer the query\nQuery:cats")
    assert enc.format("cats", "doc") == "cats"
    q, d = enc.encode(["x"], "query"), enc.encode(["x"], "doc")
    assert not np.allclose(q, d)


def test_dense_writer_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((5, 3)).astype(np.float32)
    with VectorsWriter(tmp_path / "dense", dim=3, encoder={"spec": "qwen3-embed:x"}, part_size=2) as w:
        w.write_dense(["a", "b", "c"], emb[:3])
        w.write_dense(["d", "e"], emb[3:])
    meta = read_meta(tmp_path / "dense", "dense").to_json()
    assert meta == {"format": DENSE_FORMAT, "dim": 3, "count": 5, "encoder": {"spec": "qwen3-embed:x"},
                    "normalized": True, "stats": {}}
    parts = list(open_collection(tmp_path / "dense", kind="dense").iter_dense())
    assert [ids for ids, _ in parts] == [["a", "b"], ["c", "d"], ["e"]]
    np.testing.assert_array_equal(np.concatenate([x for _, x in parts]), emb)
    assert (tmp_path / "dense" / "part-00000.ids.txt").read_text() == "a\nb\n"
    with pytest.raises(UsageError, match="duplicate document id 'a'"):
        with VectorsWriter(tmp_path / "dup", dim=3) as w:
            w.write_dense(["a", "a"], emb[:2])
    assert not (tmp_path / "dup").exists()


def test_encode_cli_dense_and_queries(tmp_path, tiny_qwen3):
    from pyserini_splare.encode import load_encoder
    from pyserini_splare.index.backends import get_backend
    from pyserini_splare.search.queries import encode_topics
    from pyserini_splare.encode.__main__ import main

    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(TEXTS)))
    out = tmp_path / "dense"
    # A Qwen3Model folder does not say which encoder it is: an explicit spec is needed.
    assert main(["--corpus", str(corpus), "--encoder", str(tiny_qwen3), "--output", str(out)]) == 2
    spec = f"qwen3-embed:{tiny_qwen3}"
    assert main(["--corpus", str(corpus), "--encoder", spec, "--output", str(out), "--batch-size", "3",
                 "--part-size", "3"]) == 0
    meta = read_meta(out, "dense").to_json()
    assert (meta["dim"], meta["count"], meta["normalized"], meta["encoder"]["spec"]) == (32, 4, True, spec)
    ids, emb = zip(*open_collection(out, kind="dense").iter_dense())
    enc = load_encoder(spec)
    np.testing.assert_allclose(np.concatenate(emb), enc.encode(TEXTS, "doc"), atol=1e-5)
    assert [i for part in ids for i in part] == ["d0", "d1", "d2", "d3"]

    faiss = get_backend("faiss")
    qs = encode_topics(spec, {"q1": "cat", "q2": "hybrid search"}, faiss, {"backend": "faiss", "dense": {"dim": 32}},
                       batch_size=1)
    np.testing.assert_allclose(qs["q2"], enc.encode(["hybrid search"], "query")[0], atol=1e-6)
    with pytest.raises(UsageError, match="dimension"):
        encode_topics(spec, {"q1": "cat"}, faiss, {"backend": "faiss", "dense": {"dim": 8}})
