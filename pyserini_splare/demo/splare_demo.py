"""SPLARE-demo: a SPLARE built offline from small parts, written as a SPLARE checkpoint directory.

No public SAE fits a trunk small enough for a CPU demo, so a TopK SAE (Gao et al., 2024) is trained in seconds
on SPLADE-tiny's last block over the demo corpus and composed into the package's SPLARE model class (docs/demo.md).
Special tokens ([CLS], [SEP]) are left out of SAE training and of pooling: their states are nearly the same for
every text, so their latents would add a constant to every document.
"""

from __future__ import annotations

from pathlib import Path

# 8x expansion of the 128-d trunk with 16 active latents per token: trains in seconds on 2 cores, and
# latents specialise enough for the explanation to show them.
SAE_LATENTS = 1024
SAE_K = 16
SAE_STEPS = 200
SAE_BATCH = 512  # token states per SAE step (the corpus has ~7,000 tokens)
MAX_LENGTH = 256
SEED = 0
LABEL_TOKENS = 4  # tokens shown per latent label


def token_states(trunk, texts: list[str], batch_size: int = 16):
    """(states (n_tokens, hidden), token strings): the non-special tokens of ``texts``, in text order."""
    import torch

    from ..encode.batching import length_sorted_batches

    tok = trunk.tokenizer
    enc = tok(texts, truncation=True, max_length=MAX_LENGTH, return_special_tokens_mask=True)
    per_text: list = [None] * len(texts)
    for idx in length_sorted_batches([len(x) for x in enc["input_ids"]], batch_size):
        batch = tok.pad([{k: enc[k][i] for k in ("input_ids", "attention_mask", "special_tokens_mask")}
                         for i in idx], return_tensors="pt")
        with torch.inference_mode():
            h = trunk(batch["input_ids"], batch["attention_mask"])
        keep = batch["attention_mask"].bool() & ~batch["special_tokens_mask"].bool()
        for r, i in enumerate(idx):
            per_text[i] = (h[r][keep[r]], tok.convert_ids_to_tokens(batch["input_ids"][r][keep[r]].tolist()))
    states = torch.cat([h for h, _ in per_text])
    return states, [t for _, toks in per_text for t in toks]


def latent_labels(sae, states, tokens: list[str]) -> dict[int, list[str]]:
    """Each latent's label: the distinct tokens that activate it most (a poor man's Neuronpedia)."""
    import torch

    with torch.inference_mode():
        z = sae(states)
    labels: dict[int, list[str]] = {}
    vals, idx = z.topk(min(24, len(tokens)), dim=0)
    for j in range(sae.n_latents):
        seen: list[str] = []
        for v, i in zip(vals[:, j].tolist(), idx[:, j].tolist()):
            if v <= 0:
                break
            tok = tokens[i]
            if not any(ch.isalnum() for ch in tok):
                continue  # punctuation says nothing about a latent's meaning
            if tok not in seen:
                seen.append(tok)
            if len(seen) == LABEL_TOKENS:
                break
        labels[j] = seen
    return labels


def build_demo_splare(trunk_path: Path, texts: list[str], output: Path, *, n_latents: int = SAE_LATENTS,
                      k: int = SAE_K, steps: int = SAE_STEPS, seed: int = SEED):
    """Train the SAE, compose the SPLARE model, save it to ``output``; returns (model, latent labels)."""
    import torch

    from ..encode.modules.sae import train_topk_sae
    from ..encode.modules.trunk import load_config, load_trunk
    from ..encode.splare import SplareConfig, build_splare

    if not 0 < k <= n_latents:
        raise ValueError(f"need 0 < k <= n_latents, got k={k}, n_latents={n_latents}")
    torch.manual_seed(seed)
    # The last block: BERT has no final norm, so its output is the trunk's last_hidden_state.
    layer = int(load_config(str(trunk_path)).num_hidden_layers) - 1
    trunk = load_trunk(str(trunk_path), layer=layer, attention="bidirectional")
    states, tokens = token_states(trunk, texts)
    sae = train_topk_sae(states, n_latents=n_latents, k=k, steps=steps, seed=seed,
                         batch_size=min(SAE_BATCH, len(states)))
    config = SplareConfig(backbone=str(trunk_path), layer=layer, sae={"path": "sae", "format": "plain"},
                          attention="bidirectional", max_length_query=MAX_LENGTH, max_length_doc=MAX_LENGTH,
                          dtype="float32", exclude_special_tokens=True)
    model = build_splare(trunk, sae, config, str(output))
    model.save(output, copy_trunk=True)
    return model, latent_labels(sae, states, tokens)
