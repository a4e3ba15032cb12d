"""BGE-M3's sparse view against FlagEmbedding's own ``BGEM3FlagModel`` on a tiny random checkpoint.

The folder is laid out as BAAI/bge-m3 is: a random 2-layer XLM-R (hidden 32), a Unigram tokenizer trained on
the fly, and ``sparse_linear.pt`` + ``colbert_linear.pt`` (FlagEmbedding reads its sparse head only when
both are there).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from pyserini_splare._errors import UsageError
from pyserini_splare.encode import load_encoder
from pyserini_splare.encode.bge_m3 import SPARSE_LINEAR

from test_models_milco import M_CORPUS, _m_tokenizer  # noqa: E402  (tests/ is on sys.path)

FlagEmbedding = pytest.importorskip("FlagEmbedding")

TEXTS = ["sparse retrieval", "поиск документов поиск", "中文 检索 检索 检索", "the cat and the cat", "x",
         "Москва 北京 تهران sparse sparse"]


@pytest.fixture(scope="session")
def tiny_bge_m3(tmp_path_factory):
    from transformers import XLMRobertaConfig, XLMRobertaModel

    root = tmp_path_factory.mktemp("tiny-bge-m3")
    tok = _m_tokenizer()
    cfg = XLMRobertaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=130, pad_token_id=1, bos_token_id=0,
                           eos_token_id=2, architectures=["XLMRobertaModel"])
    torch.manual_seed(0)
    model = XLMRobertaModel(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.normal_(0, 0.3)
    model.save_pretrained(root)
    tok.model_max_length = 128
    tok.save_pretrained(root)
    sparse = torch.nn.Linear(32, 1)
    with torch.no_grad():
        sparse.weight.normal_(0, 0.5)
        sparse.bias.fill_(0.1)
    torch.save(sparse.state_dict(), root / SPARSE_LINEAR)
    torch.save(torch.nn.Linear(32, 32).state_dict(), root / "colbert_linear.pt")
    return root


def _reference(path, texts, max_length):
    from FlagEmbedding import BGEM3FlagModel

    ref = BGEM3FlagModel(str(path), use_fp16=False, devices="cpu", query_max_length=max_length,
                         passage_max_length=max_length)
    out = ref.encode(texts, batch_size=4, max_length=max_length, return_dense=False, return_sparse=True)
    return [{int(k): float(v) for k, v in d.items()} for d in out["lexical_weights"]]


@pytest.mark.slow
def test_equals_flagembedding(tiny_bge_m3):
    enc = load_encoder(str(tiny_bge_m3), batch_size=4)  # the folder names its kind (sparse_linear.pt)
    assert enc.spec()["type"] == "bge-m3"
    texts = TEXTS + M_CORPUS
    ref = _reference(tiny_bge_m3, texts, enc.max_length_doc)
    ours = enc.encode(texts, "doc")
    n_terms = 0
    for r, v in zip(ref, ours):
        got = dict(zip(v.ids.tolist(), v.weights.tolist()))
        assert set(got) == set(r)
        np.testing.assert_allclose([got[k] for k in sorted(r)], [r[k] for k in sorted(r)], rtol=1e-5, atol=1e-6)
        n_terms += len(r)
    assert n_terms > 3 * len(texts)  # the random head gives real weights, not an all-zero comparison
    # Special tokens (<s>, </s>, <pad>, <unk>) never carry weight; queries are encoded the same way.
    tok = enc.tokenizer
    for v in enc.encode(texts, "query"):
        assert not {tok.cls_token_id, tok.eos_token_id, tok.pad_token_id, tok.unk_token_id} & set(v.ids.tolist())
    assert enc.space.term(5) == "t5"


def test_repeated_token_takes_its_max(tiny_bge_m3):
    """A token id repeated in a text weighs the max of its positions' weights (written out here)."""
    enc = load_encoder(f"bge-m3:{tiny_bge_m3}")
    text = "поиск документов поиск поиск"
    feats = enc.tokenize([text], "doc")
    with torch.no_grad():
        per_pos = torch.relu(enc.head(enc.trunk(feats["input_ids"], feats["attention_mask"]))).squeeze(-1)[0]
    ids = feats["input_ids"][0].tolist()
    want: dict[int, float] = {}
    for i, w in zip(ids, per_pos.tolist()):
        if i not in (0, 1, 2, 3) and w > 0:
            want[i] = max(want.get(i, 0.0), w)
    assert any(ids.count(i) > 1 for i in want)
    v = enc.encode([text])[0]
    assert v.ids.tolist() == sorted(want)
    np.testing.assert_allclose(v.weights, [want[k] for k in sorted(want)], rtol=1e-6)


def test_save_roundtrip(tiny_bge_m3, tmp_path):
    enc = load_encoder(f"bge-m3:{tiny_bge_m3}")
    enc.save(tmp_path / "copy")
    again = load_encoder(str(tmp_path / "copy"))
    for a, b in zip(enc.encode(TEXTS), again.encode(TEXTS)):
        assert a.ids.tolist() == b.ids.tolist()
        np.testing.assert_allclose(a.weights, b.weights, rtol=1e-6)


def test_missing_or_bad_sparse_linear(tiny_bge_m3, tmp_path):
    bad = tmp_path / "no-sparse"
    shutil.copytree(tiny_bge_m3, bad)
    (bad / SPARSE_LINEAR).unlink()
    with pytest.raises(UsageError, match="no sparse_linear.pt"):
        load_encoder(f"bge-m3:{bad}")
    torch.save({"weight": torch.zeros(1, 7), "bias": torch.zeros(1)}, bad / SPARSE_LINEAR)
    with pytest.raises(UsageError, match="do not fit"):
        load_encoder(f"bge-m3:{bad}")
    torch.save({"weight": torch.zeros(1, 32), "bias": torch.zeros(1), "code": object()}, bad / SPARSE_LINEAR)
    with pytest.raises(UsageError, match="tensors-only"):
        load_encoder(f"bge-m3:{bad}")


def test_cli_missing_sparse_linear_is_one_error_line(tiny_bge_m3, tmp_path, capsys):
    from pyserini_splare.encode.__main__ import main

    bad = tmp_path / "no-sparse"
    shutil.copytree(tiny_bge_m3, bad)
    (bad / SPARSE_LINEAR).unlink()
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "d1", "contents": "sparse retrieval"}\n')
    assert main(["--corpus", str(corpus), "--encoder", f"bge-m3:{bad}", "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "sparse_linear.pt" in err[0]
    assert not (tmp_path / "out").exists()
