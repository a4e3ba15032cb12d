"""MILCO on a tiny offline checkpoint in the reference layout (thongnt99/milco parameter names).

A random 2-layer XLM-R (hidden 32) and a BERT MLM head (hidden 16) over a WordPiece vocabulary trained on
the fly; the reference pivot and LexEcho views are written out with plain tensor ops.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import torch  # noqa: E402  (required dependencies: a missing one is a failure, not a skip)

from pyserini_splare._errors import UsageError
from pyserini_splare.encode import milco
from pyserini_splare.vectors import PrefixedSpace, VocabSpace

EN_CORPUS = ["sparse retrieval of documents", "the cat sat on the mat", "learning lexical matching",
             "queries and documents in english", "running runner runs"] * 3
M_CORPUS = EN_CORPUS + ["поиск документов на русском языке", "中文文档检索系统", "جستجوی اسناد فارسی", "Москва 北京 تهران"]
TEXTS = ["sparse retrieval", "поиск документов поиск", "中文 检索 检索 检索", "the cat and the cat", "x"]


def _en_tokenizer():
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(EN_CORPUS, trainers.WordPieceTrainer(
        vocab_size=120, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]))
    tok.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")


def _m_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.train_from_iterator(M_CORPUS, trainers.UnigramTrainer(
        vocab_size=150, special_tokens=["<s>", "<pad>", "</s>", "<unk>"], unk_token="<unk>"))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>", cls_token="<s>", sep_token="</s>")


@pytest.fixture(scope="session")
def tiny_milco(tmp_path_factory):
    """(checkpoint dir, reference modules): m/ (XLM-R config + tokenizer), en/ (BERT config + WordPiece),
    ckpt/ (config.json + model.safetensors with m_model.*, projector.*, mlm_head.*, echo.*, scale)."""
    from safetensors.torch import save_file
    from transformers import BertConfig, XLMRobertaConfig, XLMRobertaModel
    from transformers.models.bert.modeling_bert import BertOnlyMLMHead

    root = tmp_path_factory.mktemp("tiny-milco")
    en_tok, m_tok = _en_tokenizer(), _m_tokenizer()
    en_cfg = BertConfig(vocab_size=len(en_tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32)
    m_cfg = XLMRobertaConfig(vocab_size=len(m_tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                             intermediate_size=64, max_position_embeddings=130, pad_token_id=1, bos_token_id=0,
                             eos_token_id=2)
    for name, cfg, tok in (("en", en_cfg, en_tok), ("m", m_cfg, m_tok)):
        (root / name).mkdir()
        cfg.save_pretrained(root / name)
        tok.save_pretrained(root / name)
    torch.manual_seed(0)
    m_model = XLMRobertaModel(m_cfg).eval()
    projector = torch.nn.Linear(32, 16)
    head = BertOnlyMLMHead(en_cfg).eval()
    with torch.no_grad():
        for mod in (m_model, projector, head):
            for p in mod.parameters():
                if p.ndim == 2:
                    p.normal_(0, 0.3)
        head.predictions.bias.normal_(0, 0.5)
    echo = torch.nn.Linear(32, 1)
    with torch.no_grad():
        echo.bias.fill_(0.2)
    scale = torch.tensor([1.7])
    state = {f"m_model.{k}": v for k, v in m_model.state_dict().items()}
    state |= {f"projector.{k}": v for k, v in projector.state_dict().items()}
    # As the reference model saves it: decoder.bias is tied to predictions.bias and left out.
    state |= {f"mlm_head.{k}": v for k, v in head.state_dict().items() if k != "predictions.decoder.bias"}
    state |= {f"echo.{k}": v for k, v in echo.state_dict().items()}
    state["scale"] = scale
    ckpt = root / "ckpt"
    ckpt.mkdir()
    save_file({k: v.detach().clone().contiguous() for k, v in state.items()}, str(ckpt / "model.safetensors"))
    (ckpt / "config.json").write_text(json.dumps({
        "model_type": "milco", "multilingual_encoder_checkpoint": "../m", "lsr_encoder_checkpoint": str(root / "en"),
        "en_vocab_size": len(en_tok), "m_vocab_size": len(m_tok), "echo": True}))
    return ckpt, {"m_model": m_model, "projector": projector, "head": head, "echo": echo, "scale": scale,
                  "m_tok": m_tok, "en_tok": en_tok, "en_cfg": en_cfg}


def _reference(ref, texts):
    """pivot = max_i log1p(relu(MLM(gelu(P h_i)))) ; echo[id] = sum_{i: id_i = id} scale * relu(w.h_i + b)."""
    enc = ref["m_tok"](texts, padding=True, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    with torch.no_grad():
        h = ref["m_model"](input_ids=ids, attention_mask=mask).last_hidden_state.double()
        P = ref["projector"]
        x = torch.nn.functional.gelu(h @ P.weight.double().T + P.bias.double())
        t = ref["head"].predictions.transform
        y = torch.nn.functional.gelu(x @ t.dense.weight.double().T + t.dense.bias.double())
        y = torch.nn.functional.layer_norm(y, (y.shape[-1],), t.LayerNorm.weight.double(), t.LayerNorm.bias.double(),
                                           eps=ref["en_cfg"].layer_norm_eps)
        logits = y @ ref["head"].predictions.decoder.weight.double().T + ref["head"].predictions.bias.double()
        E = ref["echo"]
        tok_w = torch.relu(h @ E.weight.double().T + E.bias.double()).squeeze(-1) * ref["scale"].double()
    en_size, m_size = logits.shape[-1], len(ref["m_tok"])
    out = np.zeros((len(texts), en_size + m_size))
    for b in range(len(texts)):
        real = mask[b].bool()
        out[b, :en_size] = torch.log1p(torch.relu(logits[b, real])).max(dim=0).values.numpy()
        for i in torch.nonzero(real).flatten().tolist():
            out[b, en_size + int(ids[b, i])] += float(tok_w[b, i])
    return out


def test_milco_matches_reference(tiny_milco):
    ckpt, ref = tiny_milco
    enc = milco.load_milco(str(ckpt), batch_size=2)
    got = np.stack([v.to_dense(enc.space.size) for v in enc.encode(TEXTS, "doc")])
    want = _reference(ref, TEXTS)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
    en = len(ref["en_tok"])
    assert (got[:, :en] > 0).any() and (got[:, en:] > 0).any()
    # Repeated source tokens accumulate into one LexEcho weight per XLM-R id.
    ids = ref["m_tok"](TEXTS[2])["input_ids"]
    assert len(ids) > len(set(ids))
    spec = enc.spec()
    assert spec["type"] == "milco" and spec["path"] == str(ckpt) and spec["echo"] is True
    json.dumps(spec)


def test_milco_space_has_no_collisions_and_round_trips(tiny_milco):
    ckpt, ref = tiny_milco
    enc = milco.load_milco(str(ckpt))
    space = enc.space
    en = len(ref["en_tok"])
    assert isinstance(space.parts[0], VocabSpace) and space.parts[1].prefix == milco.ECHO_PREFIX
    terms = space.terms(range(space.size))
    assert len(set(terms)) == space.size  # no term shared between the views
    assert all(space.id(t) == i for i, t in enumerate(terms))
    vocab = ref["en_tok"].get_vocab()
    assert space.term(vocab["sparse"]) == "sparse" and space.term(en + 7) == "X7"
    # Query and document vectors of the same text share their terms (same space, same ids).
    q, d = enc.encode(["поиск документов"], "query")[0], enc.encode(["поиск документов"], "doc")[0]
    assert q.ids.tolist() == d.ids.tolist()
    # Round trip through the space's meta (what meta.json stores).
    from pyserini_splare.vectors import FeatureSpace

    assert FeatureSpace.from_meta(json.loads(json.dumps(space.to_meta()))) == space


def test_milco_space_falls_back_on_collision():
    space = milco.milco_space(["[PAD]", "X5", "hello"], 10)
    assert isinstance(space.parts[0], PrefixedSpace) and space.parts[0].prefix == milco.EN_FALLBACK_PREFIX
    terms = space.terms(range(space.size))
    assert terms[:3] == ["e0", "e1", "e2"] and terms[3 + 5] == "X5"
    assert len(set(terms)) == len(terms) and all(space.id(t) == i for i, t in enumerate(terms))


def without_echo(ckpt, d):
    """A copy of the tiny MILCO checkpoint at ``d`` with LexEcho switched off."""
    import shutil

    shutil.copytree(ckpt, d)
    cfg = json.loads((d / "config.json").read_text())
    cfg.update(echo=False, multilingual_encoder_checkpoint=str(ckpt.parent / "m"))
    (d / "config.json").write_text(json.dumps(cfg))
    return d


def test_milco_without_echo(tiny_milco, tmp_path):
    ckpt, ref = tiny_milco
    d = without_echo(ckpt, tmp_path / "noecho")
    enc = milco.load_milco(str(d))
    got = np.stack([v.to_dense(enc.space.size) for v in enc.encode(TEXTS)])
    want = _reference(ref, TEXTS)
    en = len(ref["en_tok"])
    np.testing.assert_allclose(got[:, :en], want[:, :en], atol=1e-5, rtol=1e-5)
    assert not got[:, en:].any()


def test_milco_bad_checkpoints(tiny_milco, tmp_path):
    with pytest.raises(UsageError, match="trust_remote_code"):
        milco.load_milco("omai-research/milco-650m")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "milco"}))
    with pytest.raises(UsageError, match="lacks 'multilingual_encoder_checkpoint'"):
        milco.load_milco(str(tmp_path))
    ckpt, _ = tiny_milco
    d = tmp_path / "bin"
    d.mkdir()
    (d / "config.json").write_text((ckpt / "config.json").read_text().replace('"../m"', json.dumps(str(ckpt.parent / "m"))))
    (d / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(UsageError, match="pickle"):
        milco.load_milco(str(d))


def test_milco_save_writes_the_reference_layout_that_loads_back(tiny_milco, tmp_path):
    """SparseModel.save of a MILCO model writes the reference layout (m_model.*, projector.*, mlm_head.*,
    echo.*, scale) that loads from another folder, by path alone, to the same vectors; the reference
    modules still agree with the copy."""
    from safetensors import safe_open

    from pyserini_splare.encode import load_encoder

    ckpt, ref = tiny_milco
    enc = milco.load_milco(str(ckpt))
    out = enc.save(tmp_path / "copy")
    with safe_open(str(tmp_path / "copy" / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert {"scale", "echo.weight", "projector.weight", "mlm_head.predictions.bias"} <= keys
    assert "mlm_head.predictions.decoder.bias" not in keys and any(k.startswith("m_model.") for k in keys)
    copy = load_encoder(out)  # the kind comes from its config.json
    assert copy.spec()["type"] == "milco" and copy.space.size == enc.space.size
    a = np.stack([v.to_dense(enc.space.size) for v in enc.encode(TEXTS, "doc")])
    b = np.stack([v.to_dense(copy.space.size) for v in copy.encode(TEXTS, "doc")])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(b, _reference(ref, TEXTS), atol=1e-5, rtol=1e-5)
