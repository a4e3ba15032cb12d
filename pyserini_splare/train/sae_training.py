"""An SAE for a trunk that has none: collect the trunk's residual stream over a corpus, train a TopK SAE on it.

For a backbone without a published SAE (Llama Scope and Gemma Scope aside), trains one with
:func:`~pyserini_splare.encode.modules.sae.train_topk_sae` (Gao et al. 2024) and writes a SPLARE checkpoint
around it (docs/training.md). Activations are kept in memory (``max_tokens x d_model`` float32: 1 M tokens
of a 4,096-wide trunk = 16 GB; use sae-lens at Llama Scope's scale).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass
from typing import Any, Literal

from .._errors import UsageError
from .arguments import setting as _f

# Below this many training tokens per latent, one warning line: most latents see a handful of tokens, and stay
# dead or memorise them (the SAEs of Gao et al. 2024 see thousands of tokens per latent; CACM's abstracts give the
# worked example's 4,096 latents ~39).
MIN_TOKENS_PER_LATENT = 10
# Fewer tokens than this: refused (a held-out tenth of them measures nothing).
MIN_TOKENS = 20


@dataclass
class SaeTrainingConfig:
    """``python -m pyserini_splare.train.sae``'s settings (flags through HfArgumentParser, :mod:`.arguments`)."""

    backbone: str = _f(help="HF model folder or hub id of the trunk")
    layer: int = _f(help="0-indexed block whose output the SAE reads", check="non-negative")
    corpus: str = _f(help="texts whose activations train it (JSONL, irds:ID, .tar.gz)")
    output: str = _f(help="SPLARE checkpoint directory to write")
    latents: int = _f(4096, "SAE width", check="positive")
    k: int = _f(32, "TopK's k: latents active per token", check="positive")
    steps: int = _f(2000, "Adam steps over batches of 1,024 tokens", check="positive")
    lr: float = _f(1e-3, "Adam learning rate", check="positive")
    max_tokens: int = _f(200_000, "activations kept (tokens)", check="positive")
    max_length: int = _f(256, "tokens per text", check="positive")
    attention: Literal["causal", "bidirectional"] | None = _f(None, "the trunk's attention (default: the "
                                                                    "backbone's own)")
    seed: int = _f(0, "random seed (initialisation, batches, the held-out tenth)")
    device: str = _f("cpu", "cpu, cuda or cuda:N (for the trunk's forward passes)")
    overwrite: bool = _f(False, "replace an existing --output")

    def validate(self) -> None:
        """Every setting that can be checked without the corpus or the model, one line each."""
        from .arguments import check_settings
        from .config import check_device

        check_settings(self)
        if self.k > self.latents:
            raise UsageError(f"need 0 < --k <= --latents, got {self.k} and {self.latents}")
        check_device(self.device)


def collect_activations(trunk, texts, *, max_tokens: int, max_length: int, batch_size: int = 16):
    """(n, d_model) float32 residual-stream states of the real tokens of ``texts`` (at most ``max_tokens``)."""
    import torch

    from .._console import progress

    if not texts:
        raise UsageError("no texts to collect activations from")
    out, n = [], 0
    bar = progress(total=max_tokens, desc="activations", unit="token", leave=False)
    for s in range(0, len(texts), batch_size):
        enc = trunk.tokenizer(texts[s:s + batch_size], truncation=True, max_length=max_length, padding=True,
                              return_tensors="pt")
        with torch.inference_mode():
            h = trunk(enc["input_ids"].to(trunk.device), enc["attention_mask"].to(trunk.device))
        rows = h[enc["attention_mask"].to(h.device).bool()].float().cpu()
        out.append(rows)
        n += rows.shape[0]
        bar.update(min(rows.shape[0], max_tokens - bar.n))
        if n >= max_tokens:
            break
    bar.close()
    return torch.cat(out)[:max_tokens]


def fraction_of_variance_unexplained(sae, x) -> float:
    """||x - decode(encode(x))||² / ||x - mean(x)||² (0: perfect, 1: no better than the mean)."""
    import torch

    with torch.no_grad():
        rec = sae.decode(sae(x))
        return float(((x - rec) ** 2).sum() / ((x - x.mean(dim=0)) ** 2).sum())


@contextlib.contextmanager
def _training_bar(steps: int, fit, dev, k: int):
    """A bar over ``train_topk_sae``'s Adam steps showing the held-out FVU (on up to 256 held-out tokens) every
    ~2 % of the steps. ``train_topk_sae`` (encode/modules/sae.py) takes no callback; torch's global
    optimizer-step hook sees each of its steps and its parameters (W_enc, b_enc, W_dec, b_dec)."""
    from torch.optim.optimizer import register_optimizer_step_post_hook

    from .._console import progress
    from ..encode.modules.sae import SAE

    bar = progress(total=steps, desc="SAE", unit="step")
    every = max(1, steps // 50)
    sample = dev[:256]
    d = fit.shape[1]

    def after_step(opt, args, kwargs):
        params = opt.param_groups[0]["params"]
        if len(params) != 4 or params[0].shape[0] != d or params[2].shape[1] != d:
            return  # another optimizer than the SAE's
        bar.update(1)
        if bar.n % every == 0 or bar.n == steps:
            W_enc, b_enc, W_dec, b_dec = (p.detach() for p in params)
            sae = SAE(W_enc, b_enc, activation="topk", k=k, pre_bias=b_dec, W_dec=W_dec, b_dec=b_dec)
            bar.set_postfix(fvu_dev=f"{fraction_of_variance_unexplained(sae, sample):.3f}")

    handle = register_optimizer_step_post_hook(after_step)
    try:
        yield
    finally:
        handle.remove()
        bar.close()


def train_sae(backbone: str, layer: int, texts: list[str], output: str, *, n_latents: int, k: int, steps: int,
              lr: float = 1e-3, max_tokens: int = 200_000, max_length: int = 256, attention: str | None = None,
              seed: int = 0, device: str = "cpu", overwrite: bool = False) -> dict[str, Any]:
    """Train a TopK SAE on ``backbone``'s block-``layer`` outputs over ``texts``; write a SPLARE checkpoint."""
    import torch

    from .._outputs import atomic_dir
    from ..encode.modules.sae import train_topk_sae
    from ..encode.modules.trunk import load_trunk
    from ..encode.splare import write_checkpoint
    from .file_modes import share_like_open

    if not 0 < k <= n_latents:
        raise UsageError(f"need 0 < --k <= --latents, got {k} and {n_latents}")
    trunk = load_trunk(backbone, layer=layer, attention=attention, device=device)
    acts = collect_activations(trunk, texts, max_tokens=max_tokens, max_length=max_length)
    if acts.shape[0] < MIN_TOKENS:
        raise UsageError(f"only {acts.shape[0]} tokens of activations from {len(texts)} texts (at least "
                         f"{MIN_TOKENS}): give a larger corpus")
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(acts.shape[0], generator=g)
    n_dev = max(1, acts.shape[0] // 10)
    dev, fit = acts[perm[:n_dev]], acts[perm[n_dev:]]
    if fit.shape[0] < MIN_TOKENS_PER_LATENT * n_latents:
        print(f"warning: {fit.shape[0]:,} training tokens from {len(texts):,} texts for {n_latents:,} latents "
              f"(fewer than {MIN_TOKENS_PER_LATENT} per latent): many latents will stay dead or memorise single "
              "tokens; give a larger corpus or fewer --latents", file=sys.stderr)
    with _training_bar(steps, fit, dev, k):
        sae = train_topk_sae(fit, n_latents, k, steps=steps, lr=lr, seed=seed)
    report = {"backbone": backbone, "layer": layer, "n_latents": n_latents, "k": k, "steps": steps, "lr": lr,
              "tokens": int(fit.shape[0]), "dev_tokens": int(n_dev), "seed": seed,
              "fvu_dev": fraction_of_variance_unexplained(sae, dev)}
    with atomic_dir(output, overwrite=overwrite) as tmp:
        write_checkpoint(tmp, {"backbone": backbone, "layer": layer, "sae": None, "attention": trunk.attention,
                               "dtype": "float32"}, sae=sae)
        with open(os.path.join(tmp, "sae_training.json"), "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
        share_like_open(tmp)
    return report
