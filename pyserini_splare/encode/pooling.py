"""Pooling shared by SPLADE, SPLARE and MILCO: masked max over tokens of log(1 + ReLU(x)).

SPLADE (Formal et al., SIGIR 2021/2022), eq. w_j = max_i log(1 + ReLU(w_ij)); SPLARE (Formal et al.,
ICLR 2026) applies the same pooling to SAE latents instead of vocabulary logits.
"""

from __future__ import annotations


def max_log1p_relu(x, mask):
    """``x``: (batch, tokens, features) float tensor; ``mask``: (batch, tokens), 1 for real tokens.

    Returns (batch, features). Padding positions contribute 0, which is the identity for this max
    because log1p(relu(.)) >= 0.
    """
    import torch

    act = torch.log1p(torch.relu(x))
    act = act * mask.unsqueeze(-1).to(act.dtype)
    return act.max(dim=1).values
