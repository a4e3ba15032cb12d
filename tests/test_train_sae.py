"""``python -m pyserini_splare.train.sae``: an SAE for a trunk without one, as a SPLARE checkpoint."""

from __future__ import annotations

import json

import pytest
import torch  # noqa: E402  (a required dependency: imported, not skipped)

pytestmark = pytest.mark.train


def test_sae_for_a_new_backbone_reconstructs_and_loads_as_splare(shared_data, splade_tiny_path, tmp_path):
    from transformers import AutoModel, AutoTokenizer

    from pyserini_splare.corpus import open_corpus
    from pyserini_splare.encode import load_encoder
    from pyserini_splare.encode.modules.sae import load_sae
    from pyserini_splare.train.sae.__main__ import main

    out = tmp_path / "splare-tiny"
    rc = main(["--backbone", str(splade_tiny_path), "--layer", "1", "--corpus", str(shared_data / "cacm" / "cacm.tar.gz"),
               "--latents", "256", "--k", "16", "--steps", "300", "--max-tokens", "6000", "--max-length", "128",
               "--output", str(out)])
    assert rc == 0
    report = json.loads((out / "sae_training.json").read_text())
    assert report["tokens"] > 4000 and report["fvu_dev"] < 0.5

    # Independent check: transformers' own BertModel states after block 1 (hidden_states[2]) of texts the SAE
    # never saw, reconstructed through the saved SAE; FVU written out here.
    docs = [d.text for _, d in zip(range(600), open_corpus(str(shared_data / "cacm" / "cacm.tar.gz")))][-40:]
    tok = AutoTokenizer.from_pretrained(str(splade_tiny_path))
    bert = AutoModel.from_pretrained(str(splade_tiny_path)).eval()
    enc = tok(docs, truncation=True, max_length=128, padding=True, return_tensors="pt")
    with torch.no_grad():
        h = bert(**enc, output_hidden_states=True).hidden_states[2][enc["attention_mask"].bool()]
        sae = load_sae(str(out / "sae"))
        z = sae(h)
        fvu = float(((h - sae.decode(z)) ** 2).sum() / ((h - h.mean(0)) ** 2).sum())
    assert fvu < 0.6
    assert int((z > 0).sum(dim=1).max()) <= 16

    model = load_encoder(f"splare:{out}")
    (v,) = model.encode(["a compiler for algol"], "doc")
    assert 0 < v.nnz <= 256
    # The checkpoint's default lengths (512 / 1024) are capped at what the BERT trunk can embed (512 positions,
    # its tokenizer's model_max_length): a document longer than that encodes (truncated) instead of failing.
    assert model.max_length("doc") == 512 == tok.model_max_length
    long_doc = " ".join(["compiler"] * 700)
    assert len(tok(long_doc)["input_ids"]) > 512
    (w,) = model.encode([long_doc], "doc")
    with torch.no_grad():  # the reference: the same text truncated at 512 tokens by the tokenizer itself
        e = tok([long_doc], truncation=True, max_length=512, return_tensors="pt")
        h = bert(**e, output_hidden_states=True).hidden_states[2][0]
        want = torch.log1p(torch.relu(sae(h).amax(dim=0)))
    assert torch.equal(torch.from_numpy(w.to_dense(256)) > 0, want > 0)
    torch.testing.assert_close(torch.from_numpy(w.to_dense(256)), want, atol=1e-5, rtol=1e-5)
