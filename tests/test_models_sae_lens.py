"""Our SAE loaders against sae-lens, an independent implementation (issue 9, item 9).

* an SAE that sae-lens itself builds and saves in its own format (``save_model``: cfg.json +
  sae_weights.safetensors), read back by sae-lens (``SAE.load_from_disk``) and by our loader;
* an SAE written in the Llama Scope layout (``hyperparams.json`` + ``checkpoints/final.safetensors``),
  read by sae-lens's own Llama Scope converter (``llama_scope_sae_huggingface_loader``, whose
  ``hf_hub_download`` is pointed at the test's folder) and by our loader.

Both must encode the same activations to the same latents.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

import sae_lens  # noqa: E402  (a test dependency: a missing one is a failure, not a skip)
from sae_lens.loading import pretrained_sae_loaders

from pyserini_splare.encode.modules.sae import load_sae

pytestmark = pytest.mark.slow  # importing sae_lens alone takes ~8 s

D, N = 16, 48


def _randomize(sae, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sae.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g))
        if hasattr(sae, "threshold"):
            sae.threshold.copy_(torch.rand(N, generator=g) * 0.8)


@pytest.mark.parametrize("arch", ["standard", "jumprelu", "topk"])
@pytest.mark.parametrize("apply_b_dec", [True, False])
def test_sae_saved_by_sae_lens_encodes_like_sae_lens(tmp_path, arch, apply_b_dec):
    classes = {"standard": (sae_lens.StandardSAE, sae_lens.StandardSAEConfig, {}),
               "jumprelu": (sae_lens.JumpReLUSAE, sae_lens.JumpReLUSAEConfig, {}),
               "topk": (sae_lens.TopKSAE, sae_lens.TopKSAEConfig, {"k": 6})}
    cls, cfg_cls, extra = classes[arch]
    sae = cls(cfg_cls(d_in=D, d_sae=N, apply_b_dec_to_input=apply_b_dec, **extra))
    _randomize(sae, seed=len(arch) + apply_b_dec)
    sae.save_model(str(tmp_path))
    x = torch.randn(64, D, generator=torch.Generator().manual_seed(7)) * 2
    with torch.no_grad():
        want = sae_lens.SAE.load_from_disk(str(tmp_path)).encode(x)
        got = load_sae(str(tmp_path))(x)
    assert 0.05 < (want > 0).float().mean() < 0.95  # the activation both keeps and drops latents
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def _write_llama_scope(folder, *, norm_in: float, unit_decoder: bool, seed: int = 3) -> None:
    """A random SAE in the Llama Scope release layout (OpenMOSS, He et al. 2024)."""
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(seed)
    W_dec = torch.randn(D, N, generator=g)
    if unit_decoder:
        W_dec = W_dec / W_dec.norm(dim=0, keepdim=True)
    (folder / "checkpoints").mkdir(parents=True)
    save_file({"encoder.weight": torch.randn(N, D, generator=g) / math.sqrt(D),
               "encoder.bias": torch.randn(N, generator=g) * 0.3, "decoder.weight": W_dec,
               "decoder.bias": torch.randn(D, generator=g)}, str(folder / "checkpoints" / "final.safetensors"))
    (folder / "hyperparams.json").write_text(json.dumps({
        "d_model": D, "d_sae": N, "hook_point_in": "blocks.2.hook_resid_post",
        "hook_point_out": "blocks.2.hook_resid_post", "act_fn": "jumprelu", "jump_relu_threshold": 0.4,
        "norm_activation": "dataset-wise", "dataset_average_activation_norm": {"in": norm_in, "out": norm_in},
        "use_decoder_bias": True, "apply_decoder_bias_to_pre_encoder": False,
        "sparsity_include_decoder_norm": True}))


def _sae_lens_llama_scope(monkeypatch, root, folder_name: str):
    """sae-lens's own Llama Scope converter, its hub downloads served from ``root``; the SAE is built as
    ``SAE.from_pretrained`` builds it (normalization folded with sqrt(d_model) / norm_in, the
    ``norm_scaling_factor`` its release table records for Llama Scope)."""

    def local_download(repo_id, filename, subfolder=None, **_):
        return str(root / (f"{subfolder}/{filename}" if subfolder else filename))

    monkeypatch.setattr(pretrained_sae_loaders, "hf_hub_download", local_download)
    cfg, state, _ = pretrained_sae_loaders.llama_scope_sae_huggingface_loader(
        "fnlp/test-llama-scope", folder_name, device="cpu", cfg_overrides={"dtype": "float32"})
    sae = sae_lens.SAE.from_dict(cfg)
    sae.load_state_dict(state)
    hp = json.loads((root / folder_name / "hyperparams.json").read_text())
    sae.fold_activation_norm_scaling_factor(math.sqrt(hp["d_model"]) / hp["dataset_average_activation_norm"]["in"])
    return sae


@pytest.mark.parametrize("norm_in", [math.sqrt(D), 2.5])
@pytest.mark.parametrize("unit_decoder", [True, False])
def test_llama_scope_pre_activations_equal_sae_lens(tmp_path, monkeypatch, norm_in, unit_decoder):
    """Input scaling, W_enc's orientation and b_enc: the pre-activations agree in every case."""
    _write_llama_scope(tmp_path / "L2R", norm_in=norm_in, unit_decoder=unit_decoder)
    ref = _sae_lens_llama_scope(monkeypatch, tmp_path, "L2R")
    ours = load_sae(str(tmp_path / "L2R"))
    x = torch.randn(64, D, generator=torch.Generator().manual_seed(11)) * 3
    with torch.no_grad():
        want = ref.process_sae_in(x) @ ref.W_enc + ref.b_enc
        torch.testing.assert_close(ours.pre_activation(x), want, atol=1e-5, rtol=1e-5)


def test_llama_scope_latents_equal_sae_lens_where_conventions_meet(tmp_path, monkeypatch):
    """Unit-norm decoder columns (no decoder-norm gating to apply) and a dataset norm of sqrt(d_model)
    (input scale 1): the two readings of the format then coincide, latent for latent."""
    _write_llama_scope(tmp_path / "L2R", norm_in=math.sqrt(D), unit_decoder=True)
    ref = _sae_lens_llama_scope(monkeypatch, tmp_path, "L2R")
    ours = load_sae(str(tmp_path / "L2R"))
    x = torch.randn(64, D, generator=torch.Generator().manual_seed(12)) * 3
    with torch.no_grad():
        want, got = ref.encode(x), ours(x)
    assert 0.05 < (want > 0).float().mean() < 0.95
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_llama_scope_threshold_conventions_differ_from_sae_lens(tmp_path, monkeypatch):
    """Where the readings part (recorded, not hidden): sae-lens compares the pre-activation with
    jump_relu_threshold * sqrt(d_model) / norm_in and ignores sparsity_include_decoder_norm; we follow
    lm_saes' encode (gate pre * ||W_dec[:, j]|| against jump_relu_threshold). They agree when
    norm_in = sqrt(d_model) and decoder columns have unit norm (test above); see docs/splare-checkpoint.md."""
    _write_llama_scope(tmp_path / "L2R", norm_in=2.5, unit_decoder=False)
    ref = _sae_lens_llama_scope(monkeypatch, tmp_path, "L2R")
    ours = load_sae(str(tmp_path / "L2R"))
    scale = math.sqrt(D) / 2.5
    torch.testing.assert_close(ref.threshold, ours.threshold * scale)
    assert ours.gate is not None and not torch.allclose(ours.gate, torch.ones(N))
