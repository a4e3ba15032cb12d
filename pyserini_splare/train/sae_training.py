"""An SAE for a trunk that has none: collect the trunk's residual stream over a corpus, train a TopK SAE on it.

SPLARE needs a sparse autoencoder trained on the residual stream of its trunk at the cut layer. Llama Scope
(Llama-3.1-8B) and Gemma Scope (Gemma 2) publish theirs; for another backbone (e.g. Qwen3) this command
trains one with the toolkit's TopK trainer (``encode/modules/sae.py:train_topk_sae``, Gao et al. 2024,
"Scaling and evaluating sparse autoencoders") and writes a SPLARE checkpoint directory around it:

    OUT/sae/sae.safetensors    the SAE in the plain format (``load_sae`` reads it)
    OUT/splare_config.json     backbone, layer, attention, the SAE: ``--encoder splare:OUT`` works at once,
                               and ``python -m pyserini_splare.train --encoder splare:OUT`` trains its LoRA
    OUT/sae_training.json      settings and the reconstruction quality (fraction of variance unexplained on a
                               held-out tenth of the activations)

Activations are the real (unpadded) tokens of the corpus, up to ``max_tokens`` of them, kept in memory
(``max_tokens x d_model`` float32: 1 M tokens of a 4,096-wide trunk = 16 GB; use a GPU machine and sae-lens
for SAEs at Llama Scope's scale).
"""

from __future__ import annotations

import json
import os
from typing import Any


def collect_activations(trunk, texts, *, max_tokens: int, max_length: int, batch_size: int = 16):
    """(n, d_model) float32 residual-stream states of the real tokens of ``texts`` (at most ``max_tokens``)."""
    import torch

    out, n = [], 0
    for s in range(0, len(texts), batch_size):
        enc = trunk.tokenizer(texts[s:s + batch_size], truncation=True, max_length=max_length, padding=True,
                              return_tensors="pt")
        with torch.inference_mode():
            h = trunk(enc["input_ids"].to(trunk.device), enc["attention_mask"].to(trunk.device))
        rows = h[enc["attention_mask"].to(h.device).bool()].float().cpu()
        out.append(rows)
        n += rows.shape[0]
        if n >= max_tokens:
            break
    return torch.cat(out)[:max_tokens]


def fraction_of_variance_unexplained(sae, x) -> float:
    """||x - decode(encode(x))||² / ||x - mean(x)||² (0: perfect, 1: no better than the mean)."""
    import torch

    with torch.no_grad():
        rec = sae.decode(sae(x))
        return float(((x - rec) ** 2).sum() / ((x - x.mean(dim=0)) ** 2).sum())


def train_sae(backbone: str, layer: int, texts: list[str], output: str, *, n_latents: int, k: int, steps: int,
              lr: float = 1e-3, max_tokens: int = 200_000, max_length: int = 256, attention: str | None = None,
              seed: int = 0, device: str = "cpu") -> dict[str, Any]:
    """Train a TopK SAE on ``backbone``'s block-``layer`` outputs over ``texts``; write a SPLARE checkpoint."""
    import torch

    from .._errors import UsageError
    from .._outputs import atomic_dir
    from ..encode.modules.sae import save_sae, train_topk_sae
    from ..encode.modules.trunk import load_trunk
    from ..encode.splare import SaeSpec, SplareConfig

    if not 0 < k <= n_latents:
        raise UsageError(f"need 0 < --k <= --latents, got {k} and {n_latents}")
    trunk = load_trunk(backbone, layer=layer, attention=attention, device=device)
    acts = collect_activations(trunk, texts, max_tokens=max_tokens, max_length=max_length)
    if acts.shape[0] < 20:
        raise UsageError(f"only {acts.shape[0]} tokens of activations: give a larger corpus")
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(acts.shape[0], generator=g)
    n_dev = max(1, acts.shape[0] // 10)
    dev, fit = acts[perm[:n_dev]], acts[perm[n_dev:]]
    sae = train_topk_sae(fit, n_latents, k, steps=steps, lr=lr, seed=seed)
    report = {"backbone": backbone, "layer": layer, "n_latents": n_latents, "k": k, "steps": steps, "lr": lr,
              "tokens": int(fit.shape[0]), "dev_tokens": int(n_dev), "seed": seed,
              "fvu_dev": fraction_of_variance_unexplained(sae, dev)}
    with atomic_dir(output) as tmp:
        save_sae(sae, os.path.join(tmp, "sae"))
        SplareConfig(backbone=os.path.abspath(backbone) if os.path.exists(backbone) else backbone, layer=layer,
                     sae=SaeSpec("sae", "plain"), attention=trunk.attention, dtype="float32").write(str(tmp))
        with open(os.path.join(tmp, "sae_training.json"), "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
    return report
