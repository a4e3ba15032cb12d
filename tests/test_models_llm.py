"""LLM trunk, SAEs, SPLARE and LLM-vocab SPLADE on tiny offline models, against hand-written references.

A random 4-block Llama (hidden 64) with a BPE tokenizer trained on the fly is built once per session;
references use the *uncut* model (``output_hidden_states``: hidden_states[l + 1] is block l's output)
and write the SAE and pooling formulas out in full.
"""

from __future__ import annotations

import functools
import json
import math
import re
import shutil

import numpy as np
import pytest

import torch  # noqa: E402  (required dependencies: a missing one is a failure, not a skip)
import transformers  # noqa: E402

from pyserini_splare._errors import UsageError
from pyserini_splare.encode import splade_llm, splare
from pyserini_splare.encode.modules import sae as sae_mod
from pyserini_splare.encode.modules import trunk as trunk_mod

HIDDEN, N_LAYERS, N_LATENTS = 64, 4, 256
TEXTS = [
    "sparse retrieval with latent concepts",
    "a",
    "the quick brown fox jumps over the lazy dog and keeps running far away",
    "retrieval",
    "learned sparse models map text to concepts",
]
CORPUS = TEXTS * 4 + ["concepts of retrieval models", "dogs and foxes run", "text maps to sparse latent space"]


def _tokenizer():
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    # No pad token on purpose: like Llama's, the loader must pick one.
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>")


@pytest.fixture(scope="session")
def tiny_llm(tmp_path_factory):
    """Directory holding a random LlamaForCausalLM (4 blocks, hidden 64) and its tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    d = tmp_path_factory.mktemp("tiny-llama")
    tok = _tokenizer()
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=HIDDEN, intermediate_size=128, num_hidden_layers=N_LAYERS,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      tie_word_embeddings=False, bos_token_id=0, eos_token_id=1)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():  # larger weights than the 0.02 default, so blocks change the stream visibly
        for p in model.parameters():
            if p.ndim == 2:
                p.normal_(0, 0.15)
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d


def _full_hidden(model_dir, texts, max_length=1024):
    return _full_hidden_cached(str(model_dir), tuple(texts), max_length)


@functools.lru_cache(maxsize=8)
def _full_hidden_cached(model_dir, texts, max_length):
    """Reference: uncut model, hidden_states[l + 1] for every l, right padding, causal attention."""
    from transformers import AutoModelForCausalLM

    texts = list(texts)
    tok = trunk_mod.load_tokenizer(str(model_dir))
    enc = tok(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    with torch.no_grad():
        out = model(**enc, output_hidden_states=True)
    return out, enc["attention_mask"]


def _pool(latents, mask):
    """max over real tokens of log(1 + max(0, x)), written out with numpy."""
    lat = np.log1p(np.maximum(latents, 0.0))
    out = np.zeros((lat.shape[0], lat.shape[2]), dtype=np.float64)
    for b in range(lat.shape[0]):
        real = mask[b].astype(bool)
        out[b] = lat[b, real].max(axis=0)
    return out


def _tok(trunk, texts, max_length):
    return trunk.tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")


def _dense(vectors, size):
    return np.stack([v.to_dense(size) for v in vectors])


# ---------------------------------------------------------------------------------------------
# SAEs saved in each format (random weights, thresholds at a quantile so ~10 % of latents fire)
# ---------------------------------------------------------------------------------------------


def _layer_hidden(tiny_llm, layer):
    out, mask = _full_hidden(tiny_llm, TEXTS)
    return out.hidden_states[layer + 1].numpy(), mask.numpy()


def _write_llama_scope(d, layer, hidden, mask, seed=1):
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(seed)
    W_enc = torch.randn(N_LATENTS, HIDDEN, generator=g) / math.sqrt(HIDDEN)  # (d_sae, d_model)
    b_enc = torch.randn(N_LATENTS, generator=g) * 0.1
    W_dec = torch.randn(HIDDEN, N_LATENTS, generator=g) * torch.rand(N_LATENTS, generator=g)  # varied norms
    real = hidden[mask.astype(bool)]
    norm_in = float(np.linalg.norm(real, axis=-1).mean())
    x = torch.tensor(real) * math.sqrt(HIDDEN) / norm_in
    s = (x @ W_enc.T + b_enc) * W_dec.norm(dim=0)
    thr = float(torch.quantile(s.flatten(), 0.9))
    (d / "checkpoints").mkdir(parents=True)
    save_file({"encoder.weight": W_enc, "encoder.bias": b_enc, "decoder.weight": W_dec,
               "decoder.bias": torch.randn(HIDDEN, generator=g)}, str(d / "checkpoints" / "final.safetensors"))
    hp = {"d_model": HIDDEN, "d_sae": N_LATENTS, "hook_point_in": f"blocks.{layer}.hook_resid_post",
          "hook_point_out": f"blocks.{layer}.hook_resid_post", "act_fn": "jumprelu", "jump_relu_threshold": thr,
          "norm_activation": "dataset-wise", "dataset_average_activation_norm": {"in": norm_in, "out": norm_in},
          "use_decoder_bias": True, "apply_decoder_bias_to_pre_encoder": False,
          "sparsity_include_decoder_norm": True, "top_k": 50}
    (d / "hyperparams.json").write_text(json.dumps(hp))
    return {"W_enc": W_enc.numpy().astype(np.float64), "b_enc": b_enc.numpy().astype(np.float64),
            "W_dec": W_dec.numpy().astype(np.float64), "thr": thr, "norm_in": norm_in}


def _llama_scope_reference(h, p):
    x = h.astype(np.float64) * math.sqrt(HIDDEN) / p["norm_in"]
    pre = x @ p["W_enc"].T + p["b_enc"]
    gate = np.sqrt((p["W_dec"] ** 2).sum(axis=0))
    return np.where(pre * gate > p["thr"], pre, 0.0)


def _write_sae_lens(d, arch, seed=2, k=8):
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(seed)
    t = {"W_enc": torch.randn(HIDDEN, N_LATENTS, generator=g) / math.sqrt(HIDDEN),
         "b_enc": torch.randn(N_LATENTS, generator=g) * 0.1,
         "W_dec": torch.randn(N_LATENTS, HIDDEN, generator=g),
         "b_dec": torch.randn(HIDDEN, generator=g) * 0.1}
    if arch == "jumprelu":
        t["threshold"] = torch.rand(N_LATENTS, generator=g) * 0.3
    d.mkdir(parents=True)
    save_file(t, str(d / "sae_weights.safetensors"))
    cfg = {"d_in": HIDDEN, "d_sae": N_LATENTS, "architecture": arch, "apply_b_dec_to_input": True,
           "normalize_activations": "none", "hook_name": "blocks.1.hook_resid_post"}
    if arch == "topk":
        cfg["activation_fn_kwargs"] = {"k": k}
    (d / "cfg.json").write_text(json.dumps(cfg))
    return {k2: v.numpy().astype(np.float64) for k2, v in t.items()}


def _sae_lens_reference(h, t, arch, k=8):
    pre = (h.astype(np.float64) - t["b_dec"]) @ t["W_enc"] + t["b_enc"]
    if arch == "jumprelu":
        return np.where(pre > t["threshold"], np.maximum(pre, 0), 0.0)
    if arch == "topk":
        out = np.zeros_like(pre)
        flat, fout = pre.reshape(-1, pre.shape[-1]), out.reshape(-1, pre.shape[-1])
        for r in range(flat.shape[0]):
            top = np.argsort(-flat[r])[:k]
            fout[r, top] = np.maximum(flat[r, top], 0)
        return out
    return np.maximum(pre, 0)


def _checkpoint(tmp_path, tiny_llm, layer, sae_path, sae_format="auto", **extra):
    d = tmp_path / "splare-ckpt"
    d.mkdir(parents=True)
    cfg = splare.SplareConfig(backbone=str(tiny_llm), layer=layer,
                              sae={"path": str(sae_path), "format": sae_format}, **extra)
    cfg.write(str(d))
    return d


# ---------------------------------------------------------------------------------------------
# Trunk
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_layer_cut_equals_full_model_hidden_states(tiny_llm, layer):
    trunk = trunk_mod.load_trunk(str(tiny_llm), layer=layer)
    assert len(trunk.model.layers) == layer + 1  # upper blocks are never built
    assert trunk.n_model_layers == N_LAYERS and trunk.hidden_size == HIDDEN
    enc = _tok(trunk, TEXTS, 1024)
    with torch.no_grad():
        got = trunk(enc["input_ids"], enc["attention_mask"]).numpy()
    ref, mask = _layer_hidden(tiny_llm, layer)
    real = mask.astype(bool)
    np.testing.assert_allclose(got[real], ref[real], atol=1e-5, rtol=1e-5)


def test_cut_after_last_block_is_raw_stream_not_normed(tiny_llm):
    """Cutting after the last block returns the pre-norm residual (the full model's last entry is normed)."""
    trunk = trunk_mod.load_trunk(str(tiny_llm), layer=N_LAYERS - 1)
    enc = _tok(trunk, TEXTS[:1], 64)
    with torch.no_grad():
        got = trunk(enc["input_ids"], enc["attention_mask"])[0]
        full = transformers.AutoModel.from_pretrained(tiny_llm).eval()
        normed = full(**enc).last_hidden_state[0]
        renormed = full.norm(got)
    np.testing.assert_allclose(renormed.numpy(), normed.numpy(), atol=1e-5)
    assert not np.allclose(got.numpy(), normed.numpy(), atol=1e-3)


def test_layer_beyond_depth_is_usage_error(tiny_llm, tmp_path):
    with pytest.raises(UsageError, match="beyond the model's depth"):
        trunk_mod.load_trunk(str(tiny_llm), layer=N_LAYERS)
    hidden, mask = _layer_hidden(tiny_llm, 1)
    sae_dir = tmp_path / "sae"
    _write_llama_scope(sae_dir, 7, hidden, mask)
    ckpt = _checkpoint(tmp_path, tiny_llm, 7, sae_dir)
    with pytest.raises(UsageError, match="beyond the model's depth"):
        splare.load_splare(str(ckpt))


def test_bidirectional_attention(tiny_llm):
    causal = trunk_mod.load_trunk(str(tiny_llm), layer=1)
    bidi = trunk_mod.load_trunk(str(tiny_llm), layer=1, attention="bidirectional")
    a, b = ["retrieval models map text", "retrieval models map dogs"], TEXTS
    with torch.no_grad():
        ea = _tok(causal, a, 64)
        hc = causal(ea["input_ids"], ea["attention_mask"])
        hb = bidi(ea["input_ids"], ea["attention_mask"])
        # Causal: the first tokens cannot see the differing last word; bidirectional: they can.
        assert torch.allclose(hc[0, :2], hc[1, :2], atol=1e-6)
        assert not torch.allclose(hb[0, :2], hb[1, :2], atol=1e-4)
        assert not torch.allclose(hc, hb, atol=1e-4)
        # Padding is masked: a text alone equals the same text inside a padded batch.
        eb = _tok(bidi, b, 64)
        batch = bidi(eb["input_ids"], eb["attention_mask"])
        i = 1  # the shortest text, heavily padded
        alone = _tok(bidi, [b[i]], 64)
        single = bidi(alone["input_ids"], alone["attention_mask"])[0]
        n = int(alone["attention_mask"].sum())
        torch.testing.assert_close(batch[i, :n], single[:n], atol=1e-5, rtol=1e-5)


def _lora_adapter(tiny_llm, out_dir, nonzero_b: bool):
    from peft import LoraConfig, get_peft_model

    base = transformers.AutoModel.from_pretrained(tiny_llm)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"]))
    if nonzero_b:
        g = torch.Generator().manual_seed(3)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    model.save_pretrained(out_dir)
    return out_dir


def test_lora_zero_b_changes_nothing_nonzero_b_does(tiny_llm, tmp_path):
    plain = trunk_mod.load_trunk(str(tiny_llm), layer=2)
    zero = trunk_mod.load_trunk(str(tiny_llm), layer=2, lora=str(_lora_adapter(tiny_llm, tmp_path / "z", False)))
    nz = trunk_mod.load_trunk(str(tiny_llm), layer=2, lora=str(_lora_adapter(tiny_llm, tmp_path / "n", True)))
    enc = _tok(plain, TEXTS, 64)
    with torch.no_grad():
        h0, hz, hn = (t(enc["input_ids"], enc["attention_mask"]) for t in (plain, zero, nz))
    torch.testing.assert_close(hz, h0, atol=1e-6, rtol=1e-6)
    assert (hn - h0).abs().max() > 1e-3
    with pytest.raises(UsageError, match="adapter_config.json"):
        trunk_mod.load_trunk(str(tiny_llm), layer=2, lora=str(tmp_path))


def test_tokenizer_without_pad_gets_one(tiny_llm):
    tok = trunk_mod.load_tokenizer(str(tiny_llm))
    assert tok.pad_token == "</s>" and tok.padding_side == "right"


# ---------------------------------------------------------------------------------------------
# SPLARE
# ---------------------------------------------------------------------------------------------


def test_splare_llama_scope_jumprelu_matches_reference(tiny_llm, tmp_path):
    layer = 2
    hidden, mask = _layer_hidden(tiny_llm, layer)
    params = _write_llama_scope(tmp_path / "sae", layer, hidden, mask)
    ckpt = _checkpoint(tmp_path, tiny_llm, layer, tmp_path / "sae")
    enc = splare.load_splare(str(ckpt), batch_size=2)  # sorted micro-batches of 2 from 5 texts
    got = _dense(enc.encode(TEXTS, "doc"), N_LATENTS)
    ref = _pool(_llama_scope_reference(hidden, params), mask)
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=1e-5)
    assert (got > 0).sum() > 10 and (got == 0).sum() > 10  # the threshold both keeps and drops latents
    # One text at a time gives the same vectors as the sorted, padded batches.
    for i, t in enumerate(TEXTS):
        np.testing.assert_allclose(enc.encode([t], "query")[0].to_dense(N_LATENTS), got[i], atol=1e-5)


def test_splare_space_spec_and_pseudo_terms(tiny_llm, tmp_path):
    hidden, mask = _layer_hidden(tiny_llm, 1)
    _write_llama_scope(tmp_path / "sae", 1, hidden, mask)
    enc = splare.load_splare(str(_checkpoint(tmp_path, tiny_llm, 1, tmp_path / "sae")))
    assert enc.space.size == N_LATENTS and enc.space.term(123) == "L123"
    vec = enc.encode(TEXTS[:1])[0]
    terms = enc.space.terms(vec.ids)
    assert [enc.space.id(t) for t in terms] == vec.ids.tolist()
    spec = enc.spec()
    assert spec["type"] == "splare" and spec["path"] == str(tmp_path / "splare-ckpt")
    json.dumps(spec)
    assert enc.encode([]) == []


@pytest.mark.parametrize("arch", ["jumprelu", "topk", "standard"])
def test_splare_sae_lens_formats_match_reference(tiny_llm, tmp_path, arch):
    layer = 1
    hidden, mask = _layer_hidden(tiny_llm, layer)
    t = _write_sae_lens(tmp_path / "sae", arch)
    enc = splare.load_splare(str(_checkpoint(tmp_path, tiny_llm, layer, tmp_path / "sae", "sae_lens")))
    got = _dense(enc.encode(TEXTS), N_LATENTS)
    ref = _pool(_sae_lens_reference(hidden, t, arch), mask)
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=1e-5)


def test_splare_bidirectional_and_exclude_bos(tiny_llm, tmp_path):
    hidden, mask = _layer_hidden(tiny_llm, 1)
    _write_sae_lens(tmp_path / "sae", "standard")
    causal = splare.load_splare(str(_checkpoint(tmp_path / "c", tiny_llm, 1, tmp_path / "sae")))
    bidi = splare.load_splare(str(_checkpoint(tmp_path / "b", tiny_llm, 1, tmp_path / "sae",
                                              attention="bidirectional")))
    nobos = splare.load_splare(str(_checkpoint(tmp_path / "n", tiny_llm, 1, tmp_path / "sae", exclude_bos=True)))
    vc, vb, vn = (_dense(e.encode(TEXTS), N_LATENTS) for e in (causal, bidi, nobos))
    assert not np.allclose(vc, vb, atol=1e-4)
    t = _sae_lens_reference(hidden, {k: v for k, v in _sae_tensors(tmp_path / "sae").items()}, "standard")
    m = mask.copy()
    m[:, 0] = 0
    np.testing.assert_allclose(vn, _pool(t, m), atol=1e-5, rtol=1e-5)


def _sae_tensors(d):
    from safetensors.torch import load_file

    return {k: v.numpy().astype(np.float64) for k, v in load_file(str(d / "sae_weights.safetensors")).items()}


def test_sae_d_model_mismatch_is_usage_error(tiny_llm, tmp_path):
    from safetensors.torch import save_file

    d = tmp_path / "sae"
    d.mkdir()
    save_file({"W_enc": torch.randn(32, 16), "b_enc": torch.zeros(16)}, str(d / "sae.safetensors"))
    with pytest.raises(UsageError, match="d_model 32 does not match the trunk's hidden size 64"):
        splare.load_splare(str(_checkpoint(tmp_path, tiny_llm, 1, d)))


def test_sae_hook_layer_mismatch_is_usage_error(tiny_llm, tmp_path):
    hidden, mask = _layer_hidden(tiny_llm, 1)
    _write_llama_scope(tmp_path / "sae", 3, hidden, mask)  # reads blocks.3
    with pytest.raises(UsageError, match="blocks.3.hook_resid_post"):
        splare.load_splare(str(_checkpoint(tmp_path, tiny_llm, 1, tmp_path / "sae")))


def test_bad_checkpoints_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="no splare_config.json"):
        splare.load_splare(str(tmp_path))
    (tmp_path / "splare_config.json").write_text(json.dumps({"backbone": "x", "layer": 1, "sae": {"path": "s"},
                                                             "attention": "sideways"}))
    with pytest.raises(UsageError, match=r"splare_config\.json: attention: Input should be 'causal' or "
                                         r"'bidirectional', got 'sideways'$"):
        splare.load_splare(str(tmp_path))
    # Each bad field is named (one line), a misspelt key is refused, not defaulted.
    for bad, message in (({"layer": -1}, "layer: Input should be greater than or equal to 0, got -1"),
                         ({"layer": True}, "layer: Input should be a valid integer, got True"),
                         ({"max_length_doc": 0}, "max_length_doc: Input should be greater than 0, got 0"),
                         ({"sae": {"path": "s", "format": "npz"}}, "sae.format: Input should be 'auto'"),
                         ({"dtype": "int4"}, "dtype: must be one of"),
                         ({"exclude_bso": True}, "unknown keys ['exclude_bso'] (known: attention, backbone,")):
        (tmp_path / "splare_config.json").write_text(json.dumps({"backbone": "x", "layer": 1, "sae": {"path": "s"},
                                                                 **bad}))
        with pytest.raises(UsageError, match=r"splare_config\.json: " + re.escape(message)) as e:
            splare.load_splare(str(tmp_path))
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="activation must be one of"):
        sae_mod.load_sae(str(tmp_path), activation="gelu")


def test_train_topk_sae_and_plain_format_round_trip(tiny_llm, tmp_path):
    hidden, mask = _layer_hidden(tiny_llm, 1)
    x = torch.tensor(hidden[mask.astype(bool)])
    sae = sae_mod.train_topk_sae(x, n_latents=128, k=8, steps=40, lr=1e-2, seed=0)
    assert torch.allclose(sae.W_dec.norm(dim=1), torch.ones(128), atol=1e-5)
    with torch.no_grad():
        z = sae(x)
        mse = ((sae.decode(z) - x) ** 2).mean()
        baseline = ((x - x.mean(0)) ** 2).mean()
    assert int((z > 0).sum(-1).max()) <= 8
    assert mse < 0.5 * baseline  # learned something beyond the mean
    a = sae_mod.train_topk_sae(x, n_latents=128, k=8, steps=3, lr=1e-2, seed=5)
    b = sae_mod.train_topk_sae(x, n_latents=128, k=8, steps=3, lr=1e-2, seed=5)
    assert torch.equal(a.W_enc, b.W_enc)  # deterministic for a seed
    path = sae_mod.save_sae(sae, str(tmp_path / "plain"))
    loaded = sae_mod.load_sae(path)
    assert loaded.source["format"] == "plain" and loaded.activation == "topk" and loaded.k == 8
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), z)
    # ... and SPLARE loads it: latents are max-pooled TopK codes.
    enc = splare.load_splare(str(_checkpoint(tmp_path, tiny_llm, 1, tmp_path / "plain")))
    got = _dense(enc.encode(TEXTS), 128)
    with torch.no_grad():
        lat = sae(torch.tensor(hidden)).numpy()
    np.testing.assert_allclose(got, _pool(lat, mask), atol=1e-5, rtol=1e-5)


def test_factories_through_registry(tiny_llm, tmp_path):
    from pyserini_splare.encode import load_encoder
    from pyserini_splare.encode.base import SparseEncoder

    hidden, mask = _layer_hidden(tiny_llm, 1)
    _write_llama_scope(tmp_path / "sae", 1, hidden, mask)
    ckpt = _checkpoint(tmp_path, tiny_llm, 1, tmp_path / "sae")
    enc = load_encoder(f"splare:{ckpt}", device="cpu", dtype=None, max_length_doc=8, trust_remote_code=False)
    # An explicit length overrides its side only, and the spec says so.
    assert isinstance(enc, SparseEncoder) and enc.max_length_doc == 8 and enc.max_length_query == 512
    assert enc.spec()["overrides"] == {"max_length_doc": 8}
    llm = load_encoder(f"splade-llm:{tiny_llm}", device="cpu", dtype="fp32")
    assert isinstance(llm, SparseEncoder) and "overrides" not in llm.spec()
    assert (llm.max_length_query, llm.max_length_doc) == (512, 1024)  # the model's own defaults


def test_make_splare_checkpoint_command(tiny_llm, tmp_path):
    from pyserini_splare.encode.splare_checkpoint import __main__ as mod

    hidden, mask = _layer_hidden(tiny_llm, 2)
    params = _write_llama_scope(tmp_path / "sae", 2, hidden, mask)
    out = tmp_path / "ckpt"
    assert mod.main(["--backbone", str(tiny_llm), "--sae", str(tmp_path / "sae"), "--output", str(out),
                     "--copy-sae"]) == 0
    cfg = json.loads((out / "splare_config.json").read_text())
    assert cfg["layer"] == 2 and cfg["sae"]["path"] == "sae" and cfg["attention"] == "causal"
    shutil.rmtree(tmp_path / "sae")  # the copy inside the checkpoint is what gets used
    got = _dense(splare.load_splare(str(out)).encode(TEXTS), N_LATENTS)
    np.testing.assert_allclose(got, _pool(_llama_scope_reference(hidden, params), mask), atol=1e-5, rtol=1e-5)
    # A hub SAE is recorded, not fetched (offline): the layer must then be given.
    hub = "hf://fnlp/Llama3_1-8B-Base-LXR-32x/Llama3_1-8B-Base-L26R-32x"
    assert mod.main(["--backbone", "meta-llama/Llama-3.1-8B", "--sae", hub, "--output", str(tmp_path / "h")]) == 2
    assert mod.main(["--backbone", "meta-llama/Llama-3.1-8B", "--sae", hub, "--layer", "26",
                     "--output", str(tmp_path / "h")]) == 0
    hub_cfg = splare.SplareConfig.read(str(tmp_path / "h"))
    assert hub_cfg.sae.path == hub and hub_cfg.layer == 26 and hub_cfg.backbone == "meta-llama/Llama-3.1-8B"
    assert mod.main(["--backbone", str(tiny_llm), "--sae", str(out / "sae"), "--output", str(out)]) == 2  # exists
    assert mod.main(["--backbone", str(tiny_llm), "--sae", str(out / "sae"), "--output", str(tmp_path / "x"),
                     "--layer", "1"]) == 2  # contradicts the SAE's hook point


# ---------------------------------------------------------------------------------------------
# SPLADE over the LLM vocabulary
# ---------------------------------------------------------------------------------------------


def test_splade_llm_matches_reference_and_terms_round_trip(tiny_llm, tmp_path):
    enc = splade_llm.load_splade_llm(str(tiny_llm), batch_size=2)
    out, mask = _full_hidden(tiny_llm, TEXTS)
    ref = _pool(out.logits.numpy().astype(np.float64), mask.numpy())
    vocab = out.logits.shape[-1]
    got = _dense(enc.encode(TEXTS), vocab)
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=1e-5)
    assert enc.space.size == vocab and enc.space.term(42) == "t42" and enc.space.id("t42") == 42
    vec = enc.encode(["quick brown fox"])[0]
    assert [enc.space.id(t) for t in enc.space.terms(vec.ids)] == vec.ids.tolist()
    tok = trunk_mod.load_tokenizer(str(tiny_llm))
    ids = tok("quick fox", add_special_tokens=False)["input_ids"]
    assert "".join(splade_llm.readable_terms(enc, ids)) == "quick fox"
    assert enc.spec()["type"] == "splade-llm"
    # A config directory with bidirectional attention changes the vectors.
    d = tmp_path / "splade-llm"
    d.mkdir()
    splade_llm.SpladeLLMConfig(backbone=str(tiny_llm), attention="bidirectional").write(str(d))
    bidi = _dense(splade_llm.load_splade_llm(str(d)).encode(TEXTS), vocab)
    assert not np.allclose(bidi, got, atol=1e-4)


def test_splade_llm_lora_on_causal_lm(tiny_llm, tmp_path):
    from peft import LoraConfig, get_peft_model

    def adapter(out, nonzero):
        model = get_peft_model(transformers.AutoModelForCausalLM.from_pretrained(tiny_llm),
                               LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
        if nonzero:
            with torch.no_grad():
                for name, p in model.named_parameters():
                    if "lora_B" in name:
                        p.normal_(0, 0.5)
        model.save_pretrained(out)
        return str(out)

    encs = [splade_llm.load_splade_llm(str(tiny_llm)),
            splade_llm.load_splade_llm(str(tiny_llm), lora=adapter(tmp_path / "z", False)),
            splade_llm.load_splade_llm(str(tiny_llm), lora=adapter(tmp_path / "n", True))]
    base, zero, nz = (_dense(e.encode(TEXTS), e.space.size) for e in encs)
    np.testing.assert_allclose(zero, base, atol=1e-5)
    assert np.abs(nz - base).max() > 1e-3


def test_llama_scope_per_latent_threshold_and_pre_encoder_bias(tmp_path):
    """Variant fields: log_jumprelu_threshold (per latent) and apply_decoder_bias_to_pre_encoder."""
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(9)
    d, n = 16, 40
    W_enc, b_enc = torch.randn(n, d, generator=g), torch.randn(n, generator=g)
    W_dec, b_dec = torch.randn(d, n, generator=g), torch.randn(d, generator=g)
    log_thr = torch.randn(n, generator=g)
    (tmp_path / "checkpoints").mkdir()
    save_file({"encoder.weight": W_enc, "encoder.bias": b_enc, "decoder.weight": W_dec, "decoder.bias": b_dec,
               "log_jumprelu_threshold": log_thr}, str(tmp_path / "checkpoints" / "final.safetensors"))
    (tmp_path / "hyperparams.json").write_text(json.dumps({
        "d_model": d, "d_sae": n, "hook_point_in": "blocks.0.hook_resid_post", "act_fn": "jumprelu",
        "norm_activation": "dataset-wise", "dataset_average_activation_norm": {"in": 2.5},
        "apply_decoder_bias_to_pre_encoder": True, "sparsity_include_decoder_norm": True}))
    sae = sae_mod.load_sae(str(tmp_path))
    assert sae_mod.inspect_sae(str(tmp_path)) == {"format": "llama_scope", "d_model": d, "n_latents": n,
                                                  "hook_point_in": "blocks.0.hook_resid_post", "layer": 0}
    h = torch.randn(7, d, generator=g).double()
    x = h * math.sqrt(d) / 2.5 - b_dec.double()
    pre = x @ W_enc.double().T + b_enc.double()
    keep = pre * W_dec.double().norm(dim=0) > log_thr.double().exp()
    want = torch.where(keep, pre, torch.zeros_like(pre)).numpy()
    with torch.no_grad():
        got = sae(h.float()).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
    assert (got > 0).any() and (got == 0).any()
    # TopK override on the same SAE: k latents per token, chosen by the gated score.
    topk = sae_mod.load_sae(str(tmp_path), activation="topk", k=5)
    with torch.no_grad():
        z = topk(h.float()).numpy()
    s = (pre * W_dec.double().norm(dim=0)).numpy()
    for r in range(7):
        top = np.argsort(-s[r])[:5]
        ref = np.zeros(n)
        ref[top] = np.maximum(pre.numpy()[r, top], 0)
        np.testing.assert_allclose(z[r], ref, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# The composed model: gradients, chunked pooling, pruning, save/load
# ---------------------------------------------------------------------------------------------


def test_pooling_in_chunks_equals_the_formula():
    """max_i log1p(relu(head(h_i))) over masked tokens, for chunk sizes that split texts anywhere."""
    from pyserini_splare.encode.modules.pooling import MaxLog1pReluPooling

    g = torch.Generator().manual_seed(4)
    hidden = torch.randn(3, 11, 8, generator=g)
    head = torch.nn.Linear(8, 50)
    mask = torch.tensor([[1] * 11, [1] * 4 + [0] * 7, [1] * 9 + [0] * 2])
    special = torch.zeros_like(mask)
    special[:, 0] = 1
    with torch.no_grad():
        logits = head(hidden).double().numpy()
    for chunk in (1, 3, 7, 1024):
        for skip, m in (("none", mask), ("bos", mask * (1 - special))):
            with torch.no_grad():
                got = MaxLog1pReluPooling(chunk, skip)(head, hidden, {"attention_mask": mask,
                                                                      "special_tokens_mask": special})
            np.testing.assert_allclose(got.numpy(), _pool(logits, m.numpy()), atol=1e-6)


def test_checkpointed_chunks_give_the_same_values_and_gradients_as_the_formula():
    """Training's memory-bounded pooling (each chunk's head recomputed in backward) against the formula
    max_i log1p(relu(head(h_i))) computed on the whole (B, T, V) tensor by autograd."""
    from pyserini_splare.encode.modules.pooling import MaxLog1pReluPooling

    g = torch.Generator().manual_seed(6)
    mask = torch.tensor([[1] * 11, [1] * 4 + [0] * 7, [1] * 9 + [0] * 2])
    hidden0 = torch.randn(3, 11, 8, generator=g)
    torch.manual_seed(0)
    head = torch.nn.Linear(8, 50)
    w = torch.randn(3, 50, generator=g)  # a loss that weighs every output

    def grads(fn):
        hidden = hidden0.clone().requires_grad_(True)
        head.zero_grad()
        out = fn(hidden)
        (out * w).sum().backward()
        return out.detach(), hidden.grad.clone(), head.weight.grad.clone(), head.bias.grad.clone()

    def formula(hidden):
        x = head(hidden).masked_fill(~mask.bool()[..., None], float("-inf"))
        return torch.log1p(torch.relu(x.amax(dim=1)))

    want = grads(formula)
    for chunk in (1, 3, 7, 1024):
        pool = MaxLog1pReluPooling(chunk)
        pool.checkpoint_chunks = True
        got = grads(lambda h: pool(head, h, {"attention_mask": mask}))
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)


def test_lora_adapts_only_modules_whose_output_is_used(splade_tiny_path):
    """A LoRA adapter goes only where gradients reach: SPLADE-tiny's trunk (BERT, 2 blocks) with targets that
    also name its pooler's ``dense``; after one backward every adapter's B matrix has a non-zero gradient."""
    from pyserini_splare.encode.modules.trunk import load_trunk

    trunk = load_trunk(str(splade_tiny_path), layer=1)
    trunk.add_lora(r=4, alpha=8, target_modules=["query", "key", "value", "dense"])
    names = [n for n, _ in trunk.peft.named_parameters() if "lora_B" in n]
    assert names and not any("pooler" in n for n in names)
    assert len(names) == 2 * 6  # per block: query, key, value, attention.output.dense, intermediate/output dense
    enc = trunk.tokenizer(["sparse retrieval with autoencoders", "a compiler"], padding=True, return_tensors="pt")
    trunk(enc["input_ids"], enc["attention_mask"]).pow(2).sum().backward()
    grads = dict(trunk.peft.named_parameters())
    assert all(grads[n].grad is not None and float(grads[n].grad.abs().max()) > 0 for n in names)


def test_pruning_module_equals_sparse_vector_pruning():
    from pyserini_splare.encode.modules.pruning import Pruning
    from pyserini_splare.vectors import SparseVector

    g = torch.Generator().manual_seed(5)
    pooled = torch.relu(torch.randn(6, 40, generator=g)).round(decimals=1)  # ties on purpose
    for mod, ref in ((Pruning("topk", k_query=3, k_doc=7), lambda v, kind: v.topk(3 if kind == "query" else 7)),
                     (Pruning("mass", mass=0.6), lambda v, kind: v.mass_prune(0.6))):
        for kind in ("query", "doc"):
            got = mod(pooled, kind).numpy()
            for row, out in zip(pooled.numpy(), got):
                want = ref(SparseVector.from_dense(row), kind).to_dense(40)
                np.testing.assert_array_equal(out, want)
    assert Pruning()(pooled, "doc") is pooled


def test_splare_model_is_differentiable_and_its_sae_stays_frozen(tiny_llm, tmp_path):
    from pyserini_splare.encode.model import SparseModel

    hidden, mask = _layer_hidden(tiny_llm, 1)
    _write_llama_scope(tmp_path / "sae", 1, hidden, mask)
    model = splare.load_splare(str(_checkpoint(tmp_path, tiny_llm, 1, tmp_path / "sae", attention="bidirectional")))
    assert isinstance(model, SparseModel)
    sae_before = {k: v.clone() for k, v in model.head.state_dict().items()}
    peft_model = model.trunk.add_lora(r=4, alpha=8, target_modules=["q_proj", "v_proj"])
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model.train()
    for _ in range(2):
        pooled = model(TEXTS, "doc")
        assert pooled.requires_grad and pooled.shape == (len(TEXTS), N_LATENTS)
        loss = -(pooled[0] * pooled[1]).sum() + pooled.sum() * 1e-3
        opt.zero_grad()
        loss.backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters() if "lora_B" in n)
        opt.step()
    model.eval()
    for k, v in model.head.state_dict().items():  # the SAE's tensors are bit-identical after training
        assert torch.equal(v, sae_before[k]), k
    assert any(p.abs().sum() > 0 for n, p in peft_model.named_parameters() if "lora_B" in n)
    # save -> load gives the trained model's vectors; the adapter is in DIR/lora, the SAE referenced.
    trained = _dense(model.encode(TEXTS, "doc"), N_LATENTS)
    out = tmp_path / "trained"
    model.save(out)
    cfg = json.loads((out / "splare_config.json").read_text())
    assert cfg["lora"] == "lora" and (out / "lora" / "adapter_config.json").is_file()
    assert cfg["sae"]["path"] == str(tmp_path / "sae") and cfg["attention"] == "bidirectional"
    again = splare.load_splare(str(out))
    # (merged at load vs applied beside the weights during training: float32 rounding, ~1e-5 relative)
    np.testing.assert_allclose(_dense(again.encode(TEXTS, "doc"), N_LATENTS), trained, rtol=1e-4, atol=1e-5)
    base = _dense(splare.load_splare(str(tmp_path / "splare-ckpt")).encode(TEXTS, "doc"), N_LATENTS)
    assert np.abs(base - trained).max() > 1e-4  # the adapter changed the vectors


def test_splade_llm_save_round_trip_with_trained_adapter(tiny_llm, tmp_path):
    model = splade_llm.load_splade_llm(str(tiny_llm), attention="bidirectional")
    model.trunk.add_lora(r=4, alpha=8, target_modules=["q_proj", "v_proj"])
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    want = _dense(model.encode(TEXTS), model.space.size)
    model.save(tmp_path / "out")
    got = _dense(splade_llm.load_splade_llm(str(tmp_path / "out")).encode(TEXTS), model.space.size)
    np.testing.assert_allclose(got, want, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# The one SPLARE checkpoint writer and module persistence
# ---------------------------------------------------------------------------------------------


def test_write_checkpoint_records_portable_paths(tmp_path, monkeypatch):
    """Parts inside the directory stay relative, hub ids and hf:// as given, other local paths absolute (a
    relative one resolved against ``base``), an in-memory SAE is written to DIR/sae and loads back equal."""
    (tmp_path / "elsewhere" / "adapter").mkdir(parents=True)
    (tmp_path / "elsewhere" / "sae.safetensors").write_bytes(b"")
    out = tmp_path / "ckpt"
    (out / "lora").mkdir(parents=True)
    cfg = splare.write_checkpoint(out, {"backbone": "meta-llama/Llama-3.1-8B", "layer": 3, "lora": "lora",
                                       "sae": {"path": "sae.safetensors", "format": "plain"}},
                                  base=str(tmp_path / "elsewhere"))
    on_disk = json.loads((out / "splare_config.json").read_text())
    assert on_disk == cfg.to_json()
    assert (on_disk["backbone"], on_disk["lora"]) == ("meta-llama/Llama-3.1-8B", "lora")
    assert on_disk["sae"]["path"] == str(tmp_path / "elsewhere" / "sae.safetensors")
    monkeypatch.chdir(tmp_path / "elsewhere")
    hub = "hf://fnlp/Llama3_1-8B-Base-LXR-32x/Llama3_1-8B-Base-L26R-32x"
    cfg = splare.write_checkpoint(tmp_path / "c2", {"backbone": ".", "layer": 0, "lora": "adapter",
                                                    "sae": {"path": hub}})
    assert (cfg.backbone, cfg.lora, cfg.sae.path) == (str(tmp_path / "elsewhere"),
                                                     str(tmp_path / "elsewhere" / "adapter"), hub)
    g = torch.Generator().manual_seed(0)
    sae = sae_mod.SAE(torch.randn(8, 16, generator=g), torch.zeros(16), activation="topk", k=4)
    cfg = splare.write_checkpoint(tmp_path / "c3", {"backbone": "b", "layer": 1, "sae": None}, sae=sae)
    assert (cfg.sae.path, cfg.sae.format) == ("sae", "plain")
    back = sae_mod.load_sae(str(tmp_path / "c3" / "sae"))
    x = torch.randn(5, 8, generator=g)
    assert torch.equal(back(x), sae(x))
    with pytest.raises(UsageError, match=r"c4/splare_config\.json: layer: Input should be greater than or equal"):
        splare.write_checkpoint(tmp_path / "c4", {"backbone": "b", "layer": -2, "sae": {"path": "s"}})
    assert not (tmp_path / "c4").exists()  # refused before anything was written


def test_splare_save_is_built_from_its_modules_configs(tiny_llm, tmp_path):
    """``save`` composes splare_config.json from the trunk's, the SAE's and the pooling's ``config()``, and
    the module configs persist on their own (``config_keys``, ``save_config`` / ``load``)."""
    from pyserini_splare.encode.modules.pooling import MaxLog1pReluPooling
    from pyserini_splare.encode.modules.pruning import Pruning

    hidden, mask = _layer_hidden(tiny_llm, 1)
    _write_llama_scope(tmp_path / "sae", 1, hidden, mask)
    model = splare.load_splare(str(_checkpoint(tmp_path, tiny_llm, 1, tmp_path / "sae", exclude_bos=True,
                                               attention="bidirectional")))
    model.save(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "splare_config.json").read_text())
    trunk, sae = model.trunk.config(), model.head.config()
    assert trunk == {"backbone": str(tiny_llm), "layer": 1, "attention": "bidirectional", "lora": None}
    assert {k: saved[k] for k in trunk} == trunk
    assert saved["sae"] == {**sae, "path": str(tmp_path / "sae")} and sae["format"] == "llama_scope"
    assert model.pooling.config() == {"method": "max_log1p_relu", "skip": "bos"} and saved["exclude_bos"] is True
    np.testing.assert_allclose(_dense(splare.load_splare(str(tmp_path / "saved")).encode(TEXTS), N_LATENTS),
                               _dense(model.encode(TEXTS), N_LATENTS))
    p = Pruning("mass", mass=0.5)
    p.save_config(tmp_path / "saved")
    assert json.loads((tmp_path / "saved" / "pruning.json").read_text()) == {"mode": "mass", "k_query": 0,
                                                                              "k_doc": 0, "mass": 0.5}
    assert Pruning.load(tmp_path / "saved").config() == p.config()
    with pytest.raises(TypeError, match="saved inside its kind's checkpoint file"):
        MaxLog1pReluPooling(skip="bos").save_config(tmp_path)
