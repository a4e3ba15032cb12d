"""OpenSearch inference-free models against sentence-transformers' ``SparseEncoder`` on the same folder.

A tiny random BERT masked LM with a WordPiece tokenizer trained on the fly and an ``idf.json``; the reference
is sentence-transformers' Router (queries: ``SparseStaticEmbedding`` from the same ``idf.json``; documents:
``MLMTransformer`` + ``SpladePooling``), built in memory over the folder and also saved and loaded back as a
folder in its own layout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from pyserini_splare._errors import UsageError
from pyserini_splare.encode import load_encoder

from test_models_milco import EN_CORPUS, _en_tokenizer  # noqa: E402  (tests/ is on sys.path)

QUERIES = ["sparse retrieval", "the cat sat on the mat mat mat", "learning lexical", "zzz unknown words",
           " ".join(["documents"] * 100)]
DOCS = EN_CORPUS + ["running runner runs " * 40]


def _make_folder(root):
    from transformers import BertConfig, BertForMaskedLM

    tok = _en_tokenizer()
    tok.model_max_length = 48
    cfg = BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=64)
    torch.manual_seed(0)
    model = BertForMaskedLM(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.normal_(0, 0.5)
    model.save_pretrained(root)
    tok.save_pretrained(root)
    vocab = tok.get_vocab()
    rng = np.random.default_rng(0)
    # Three tokens in four listed, special tokens left out (0 weight), as OpenSearch's tables do.
    idf = {t: float(rng.uniform(0.1, 5)) for t, i in sorted(vocab.items(), key=lambda kv: kv[1])
           if i % 4 != 0 and not t.startswith("[")}
    (root / "idf.json").write_text(json.dumps(idf))
    return tok


def _st_model(root, activation):
    from sentence_transformers import SparseEncoder
    from sentence_transformers.base.modules.router import Router
    from sentence_transformers.sparse_encoder.modules import MLMTransformer, SparseStaticEmbedding, SpladePooling
    from transformers import AutoTokenizer

    query = SparseStaticEmbedding.from_json(str(root / "idf.json"), tokenizer=AutoTokenizer.from_pretrained(root),
                                            frozen=True)
    router = Router.for_query_document(query_modules=[query],
                                       document_modules=[MLMTransformer(str(root)), SpladePooling("max", activation)])
    return SparseEncoder(modules=[router], similarity_fn_name="dot", device="cpu")


@pytest.fixture(scope="session")
def tiny_opensearch(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-opensearch")
    _make_folder(root)
    return root


def _dense(vecs, size):
    out = np.zeros((len(vecs), size), dtype=np.float32)
    for r, v in enumerate(vecs):
        out[r, v.ids] = v.weights
    return out


def _check_equal(enc, ref):
    size = enc.space.size
    q_ref = ref.encode_query(QUERIES, convert_to_tensor=True).to_dense().numpy()
    d_ref = ref.encode_document(DOCS, convert_to_tensor=True, batch_size=4).to_dense().numpy()
    q, d = _dense(enc.encode(QUERIES, "query"), size), _dense(enc.encode(DOCS, "doc"), size)
    assert q_ref.shape == q.shape and d_ref.shape == d.shape
    np.testing.assert_array_equal(q, q_ref)  # a table lookup: exact
    np.testing.assert_allclose(d, d_ref, rtol=1e-5, atol=1e-5)  # float32 batch noise
    assert (q > 0).sum() > len(QUERIES) and (d > 0).sum() > 10 * len(DOCS)


@pytest.mark.slow
def test_root_layout_equals_sentence_transformers(tiny_opensearch):
    enc = load_encoder(str(tiny_opensearch))  # idf.json names the kind
    assert enc.spec()["type"] == "opensearch" and enc.spec()["activation"] == "relu"
    _check_equal(enc, _st_model(tiny_opensearch, "relu"))


@pytest.mark.slow
def test_sentence_transformers_folder_log1p_relu(tiny_opensearch, tmp_path):
    """The folder sentence-transformers itself saves (Router, MLM in a subfolder, doc-v3's log1p_relu),
    loaded back by sentence-transformers and by us."""
    from sentence_transformers import SparseEncoder

    folder = tmp_path / "st"
    _st_model(tiny_opensearch, "log1p_relu").save_pretrained(str(folder))
    shutil.copy(tiny_opensearch / "idf.json", folder / "idf.json")
    enc = load_encoder(f"opensearch:{folder}")
    assert enc.activation == "log1p_relu" and os.path.basename(enc.mlm_path) == "document_0_MLMTransformer"
    _check_equal(enc, SparseEncoder(str(folder), device="cpu"))


def test_queries_load_no_torch(tiny_opensearch):
    """Encoding queries imports neither torch nor transformers (a fresh interpreter, checked by sys.modules)."""
    # Words the idf table lists (the tokenizer is trained on the fly: which ids get no weight varies).
    words = [t for t in json.loads((tiny_opensearch / "idf.json").read_text()) if t.isalpha() and len(t) > 2][:4]
    code = (
        "import sys\n"
        "from pyserini_splare.encode import load_encoder\n"
        f"enc = load_encoder('opensearch:{tiny_opensearch}')\n"
        f"v = enc.encode([{' '.join(words[:2])!r}, {' '.join(words[2:])!r}], 'query')\n"
        "assert all(len(x.ids) for x in v), v\n"
        "bad = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
        "print('LOADED', bad)\n")
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "LOADED []" in out.stdout


@pytest.mark.parametrize("idf, message", [
    ({"sparse": float("nan")}, "not finite non-negative"),
    ({"sparse": -1.0}, "not finite non-negative"),
    ({"sparse": "high"}, "not finite non-negative"),
    ({"sparse": 1.0, "notaword12345": 2.0}, "not in the tokenizer's vocabulary"),
    ([1, 2], "non-empty JSON object"),
])
def test_bad_idf(tiny_opensearch, tmp_path, idf, message):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_opensearch, bad)
    (bad / "idf.json").write_text(json.dumps(idf))  # json writes NaN as NaN, as Python's reader accepts
    with pytest.raises(UsageError, match=message):
        load_encoder(f"opensearch:{bad}")


def test_bad_idf_cli_one_error_line(tiny_opensearch, tmp_path, capsys):
    from pyserini_splare.encode.__main__ import main

    bad = tmp_path / "bad"
    shutil.copytree(tiny_opensearch, bad)
    (bad / "idf.json").write_text('{"sparse": -2}')
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "d1", "contents": "sparse retrieval"}\n')
    assert main(["--corpus", str(corpus), "--encoder", str(bad), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "idf.json" in err[0]
    assert not (tmp_path / "out").exists()
