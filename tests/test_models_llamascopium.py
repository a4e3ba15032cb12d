"""SAEs in the layouts of the Llama Scope authors' library against that library (``llamascopium``).

* v2: a random ``SparseAutoEncoder`` that llamascopium builds and saves itself (``save_pretrained`` +
  ``cfg.save_hyperparameters``: config.json + sae_weights.safetensors), read back by llamascopium
  (``from_pretrained``) and by our loader;
* v1 (the public Llama Scope releases: hyperparams.json + checkpoints/final.safetensors): our loader against
  llamascopium fed the same weights.

Reference latents are llamascopium's ``encode(normalize_activations({hook: x})[hook])``, for JumpReLU, TopK
and ReLU, dataset-wise and inference norms, with and without ``sparsity_include_decoder_norm``, and decoder
rows of norms 0.3-3 (where the decoder-norm gating matters).
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from conftest import require_extra  # noqa: E402

require_extra("llamascopium", "test")

from llamascopium.models.sae import SAEConfig, SparseAutoEncoder  # noqa: E402

from pyserini_splare._errors import UsageError  # noqa: E402
from pyserini_splare.encode.modules.sae import detect_format, inspect_sae, load_sae  # noqa: E402

D, EXPANSION = 16, 3
N = D * EXPANSION
HOOK = "blocks.2.hook_resid_post"
NORM = 2.5  # dataset average activation norm != sqrt(D): the input scale matters


def _sae(act_fn: str, norm: str, include_decoder_norm: bool, seed: int = 0) -> SparseAutoEncoder:
    cfg = SAEConfig(d_model=D, expansion_factor=EXPANSION, hook_point_in=HOOK, hook_point_out=HOOK, act_fn=act_fn,
                    top_k=5, norm_activation=norm, sparsity_include_decoder_norm=include_decoder_norm,
                    device="cpu", dtype=torch.float32)
    sae = SparseAutoEncoder(cfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        sae.W_E.copy_(torch.randn(D, N, generator=g) / math.sqrt(D))
        sae.b_E.copy_(torch.randn(N, generator=g) * 0.3)
        rows = torch.randn(N, D, generator=g)
        norms = torch.linspace(0.3, 3.0, N)[torch.randperm(N, generator=g)]
        sae.W_D.copy_(rows / rows.norm(dim=1, keepdim=True) * norms[:, None])
        sae.b_D.copy_(torch.randn(D, generator=g))
        if act_fn == "jumprelu":
            sae.activation_function.log_jumprelu_threshold.copy_(torch.log(torch.rand(N, generator=g) * 0.8 + 0.05))
    sae.set_dataset_average_activation_norm({HOOK: NORM})
    return sae


def _reference(sae: SparseAutoEncoder, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return sae.encode(sae.normalize_activations({HOOK: x})[HOOK])


def _x(seed: int = 7) -> torch.Tensor:
    return torch.randn(3, 11, D, generator=torch.Generator().manual_seed(seed)) * 1.7


CASES = [(act, norm, inc) for act in ("jumprelu", "topk", "relu") for norm in ("dataset-wise", "inference")
         for inc in (True, False)]


@pytest.mark.parametrize("act_fn, norm, include_decoder_norm", CASES)
def test_v2_layout_equals_llamascopium(tmp_path, act_fn, norm, include_decoder_norm):
    sae = _sae(act_fn, norm, include_decoder_norm)
    sae.save_pretrained(tmp_path)
    sae.cfg.save_hyperparameters(tmp_path)
    assert detect_format(str(tmp_path)) == "llamascopium"
    ref = SparseAutoEncoder.from_pretrained(str(tmp_path))
    x = _x()
    want = _reference(ref, x)
    torch.testing.assert_close(want, _reference(sae, x))  # llamascopium reads back what it wrote
    ours = load_sae(str(tmp_path))
    with torch.no_grad():
        got = ours(x)
    frac = (want > 0).float().mean()
    assert 0.02 < frac < 0.9, frac  # the activation both keeps and drops latents
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    info = inspect_sae(str(tmp_path))
    assert (info["format"], info["d_model"], info["n_latents"], info["layer"]) == ("llamascopium", D, N, 2)


def test_v2_folded_dataset_norm_equals_llamascopium(tmp_path):
    """``save_pretrained(fold_activation_scale=True)`` folds the dataset norm into the weights and switches
    the config to inference mode: the latents change scale, and we follow."""
    sae = _sae("jumprelu", "dataset-wise", True)
    sae.save_pretrained(tmp_path, fold_activation_scale=True)
    sae.cfg.save_hyperparameters(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["norm_activation"] == "inference"
    ref = SparseAutoEncoder.from_pretrained(str(tmp_path))
    x = _x(8)
    with torch.no_grad():
        torch.testing.assert_close(load_sae(str(tmp_path))(x), _reference(ref, x), atol=1e-5, rtol=1e-5)


def _write_v1(folder, sae: SparseAutoEncoder, *, threshold_as: str) -> None:
    """The public Llama Scope release layout holding ``sae``'s weights (transposed as the releases store them)."""
    from safetensors.torch import save_file

    (folder / "checkpoints").mkdir(parents=True)
    t = {"encoder.weight": sae.W_E.detach().T.contiguous(), "encoder.bias": sae.b_E.detach().clone(),
         "decoder.weight": sae.W_D.detach().T.contiguous(), "decoder.bias": sae.b_D.detach().clone()}
    hp = {"d_model": D, "d_sae": N, "hook_point_in": HOOK, "hook_point_out": HOOK, "act_fn": sae.cfg.act_fn,
          "top_k": sae.cfg.top_k, "norm_activation": sae.cfg.norm_activation,
          "dataset_average_activation_norm": {"in": NORM, "out": NORM}, "use_decoder_bias": True,
          "apply_decoder_bias_to_pre_encoder": False,
          "sparsity_include_decoder_norm": sae.cfg.sparsity_include_decoder_norm}
    if sae.cfg.act_fn == "jumprelu":
        log_thr = sae.activation_function.log_jumprelu_threshold.detach()
        if threshold_as == "tensor":
            t["log_jumprelu_threshold"] = log_thr.clone()
        else:  # the releases' scalar jump_relu_threshold: make every latent's threshold that value
            with torch.no_grad():
                log_thr.fill_(math.log(0.4))
            hp["jump_relu_threshold"] = 0.4
    save_file(t, str(folder / "checkpoints" / "final.safetensors"))
    (folder / "hyperparams.json").write_text(json.dumps(hp))


@pytest.mark.parametrize("act_fn, norm, include_decoder_norm, threshold_as", [
    ("jumprelu", "dataset-wise", True, "scalar"), ("jumprelu", "dataset-wise", False, "scalar"),
    ("jumprelu", "dataset-wise", True, "tensor"), ("topk", "dataset-wise", True, None),
    ("topk", "inference", False, None), ("relu", "inference", True, None), ("relu", "dataset-wise", False, None)])
def test_v1_layout_equals_llamascopium_fed_the_same_weights(tmp_path, act_fn, norm, include_decoder_norm,
                                                            threshold_as):
    sae = _sae(act_fn, norm, include_decoder_norm, seed=1)
    _write_v1(tmp_path / "L2R", sae, threshold_as=threshold_as)
    assert detect_format(str(tmp_path / "L2R")) == "llama_scope"
    x = _x(9)
    want = _reference(sae, x)
    with torch.no_grad():
        got = load_sae(str(tmp_path / "L2R"))(x)
    assert 0.02 < (want > 0).float().mean() < 0.9
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("key, value, message", [
    ("act_fn", "batchtopk", "act_fn 'batchtopk' is not supported"),
    ("norm_activation", "token-wise", "norm_activation 'token-wise' is not supported"),
    ("norm_activation", "batch-wise", "norm_activation 'batch-wise' is not supported"),
    ("sae_type", "crosscoder", "not a plain SAE"),
])
def test_unsupported_modes_are_one_error(tmp_path, key, value, message):
    sae = _sae("jumprelu", "dataset-wise", True)
    sae.save_pretrained(tmp_path)
    sae.cfg.save_hyperparameters(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg[key] = value
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UsageError, match=message):
        load_sae(str(tmp_path))


def test_v1_token_wise_norm_is_refused(tmp_path):
    sae = _sae("relu", "dataset-wise", True)
    _write_v1(tmp_path / "L2R", sae, threshold_as=None)
    hp = json.loads((tmp_path / "L2R" / "hyperparams.json").read_text())
    hp["norm_activation"] = "token-wise"
    (tmp_path / "L2R" / "hyperparams.json").write_text(json.dumps(hp))
    with pytest.raises(UsageError, match="token-wise"):
        load_sae(str(tmp_path / "L2R"))


def test_missing_dataset_norm_is_refused(tmp_path):
    sae = _sae("relu", "dataset-wise", True)
    sae.dataset_average_activation_norm = None  # llamascopium then saves an uninitialised scalar
    sae.save_pretrained(tmp_path)
    sae.cfg.save_hyperparameters(tmp_path)
    from safetensors.torch import load_file, save_file

    t = load_file(str(tmp_path / "sae_weights.safetensors"))
    t = {k: v for k, v in t.items() if not k.startswith("dataset_average_activation_norm.")}
    save_file(t, str(tmp_path / "sae_weights.safetensors"))
    with pytest.raises(UsageError, match="dataset-wise but dataset_average_activation_norm"):
        load_sae(str(tmp_path))


def test_sae_lens_converter_reads_v1_differently(tmp_path, monkeypatch):
    """sae-lens's own Llama Scope converter on the same v1 folder does not give llamascopium's latents when
    the dataset norm is not sqrt(d_model) and decoder rows are not unit-norm (it scales the threshold by the
    input factor and ignores sparsity_include_decoder_norm); ours does (test above). docs/splare-checkpoint.md."""
    pytest.importorskip("sae_lens")
    from test_models_sae_lens import _sae_lens_llama_scope  # noqa: E402  (tests/ is on sys.path)

    sae = _sae("jumprelu", "dataset-wise", True, seed=1)
    _write_v1(tmp_path / "L2R", sae, threshold_as="scalar")
    x = _x(10).reshape(-1, D)
    want = _reference(sae, x)
    with torch.no_grad():
        theirs = _sae_lens_llama_scope(monkeypatch, tmp_path, "L2R").encode(x)
        ours = load_sae(str(tmp_path / "L2R"))(x)
    torch.testing.assert_close(ours, want, atol=1e-5, rtol=1e-5)
    differ = ((theirs > 0) != (want > 0)).float().mean()
    assert differ > 0.05, differ  # a different set of active latents, not rounding
