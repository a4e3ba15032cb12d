"""Pooling: per-token outputs of a head -> one vector per text.

* :class:`MaxLog1pReluPooling` (vocabulary and SAE heads): SPLADE's ``u_j = max_i log(1 + ReLU(w_ij))``
  over the text's pooled tokens (Formal et al., SIGIR 2021, eq. 2; SPLARE, ICLR 2026, applies it to SAE
  latents). The head is applied here, ``chunk_tokens`` token states at a time, and each chunk is
  max-reduced before the next is computed: the ``[batch, tokens, vocabulary]`` logits (30,522 or 128k
  per token) or ``[batch, tokens, 131,072]`` latents never exist for a whole batch. This is exact:
  log1p(ReLU(.)) is monotonic, so ``max_i log1p(relu(x_i)) = log1p(relu(max_i x_i))``, and the max over
  chunks is the max over all tokens. Gradients flow through the max to the arg-max tokens.
* :class:`LexEchoPooling` (MILCO's source view): ``echo_t = sum_{i: id_i = t} w_i``, one weight per source
  token id (Nguyen et al., 2025, MILCO; the reference code's pairwise sum over equal ids is the dot
  product of these per-id sums).

``skip`` leaves tokens out of pooling: ``"bos"`` the first token when it is a special one (a decoder's
BOS: its attention-sink state is huge and, under causal attention, the same for every text), ``"special"``
every special token ([CLS]/[SEP] of a BERT trunk), ``"none"`` nothing.
"""

from __future__ import annotations

from typing import Any, Callable, Literal

import torch

Skip = Literal["none", "bos", "special"]
SKIPS = ("none", "bos", "special")
# Token rows per chunk: 1,024 x 30,522 float32 logits = 125 MB; x 131,072 latents = 0.5 GB.
DEFAULT_CHUNK_TOKENS = 1024


def pool_mask(attention_mask, special_tokens_mask=None, skip: Skip = "none"):
    """The (batch, tokens) 0/1 mask of pooled tokens (right padding: position 0 is the first token)."""
    if skip not in SKIPS:
        raise ValueError(f"skip must be one of {SKIPS}, got {skip!r}")
    if skip == "none":
        return attention_mask
    if special_tokens_mask is None:
        raise ValueError(f"skip={skip!r} needs the tokenizer's special_tokens_mask")
    mask = attention_mask.clone()
    special = special_tokens_mask.to(mask.dtype)
    if skip == "bos":
        mask[:, 0] = mask[:, 0] * (1 - special[:, 0])
    else:
        mask = mask * (1 - special)
    return mask


class MaxLog1pReluPooling(torch.nn.Module):
    """``forward(head, hidden (B, T, H), features) -> (B, V)`` = max over pooled tokens of log1p(relu(head(h)))."""

    method = "max_log1p_relu"

    def __init__(self, chunk_tokens: int = DEFAULT_CHUNK_TOKENS, skip: Skip = "none"):
        super().__init__()
        if int(chunk_tokens) <= 0:
            raise ValueError(f"chunk_tokens must be positive, got {chunk_tokens}")
        if skip not in SKIPS:
            raise ValueError(f"skip must be one of {SKIPS}, got {skip!r}")
        self.chunk_tokens, self.skip = int(chunk_tokens), skip

    def config(self) -> dict[str, Any]:
        return {"method": self.method, "skip": self.skip}

    def forward(self, head: Callable, hidden, features):
        """``features``: the batch's ``attention_mask`` (and ``special_tokens_mask`` when ``skip`` needs it)."""
        mask = pool_mask(features["attention_mask"], features.get("special_tokens_mask"), self.skip)
        return max_log1p_relu_chunked(head, hidden, mask, self.chunk_tokens)


def max_log1p_relu_chunked(head: Callable, hidden, mask, chunk_tokens: int = DEFAULT_CHUNK_TOKENS):
    """max over masked tokens of log1p(relu(head(hidden))), ``chunk_tokens`` token rows at a time -> (B, V) float32."""
    b, t = mask.shape
    step = max(1, chunk_tokens // max(b, 1))  # positions per chunk: about chunk_tokens rows
    keep = mask.bool()
    out = None
    for s in range(0, t, step):
        m = keep[:, s:s + step]
        if not bool(m.any()):
            continue  # only padding here (the tail of a length-sorted batch)
        x = head(hidden[:, s:s + step])
        part = x.masked_fill(~m.unsqueeze(-1), float("-inf")).amax(dim=1)
        out = part if out is None else torch.maximum(out, part)
    if out is None:  # no pooled token at all (every text empty after `skip`)
        width = head(hidden[:, :1]).shape[-1]
        return hidden.new_zeros((b, width), dtype=torch.float32)
    # -inf (a text with no pooled token in any chunk) -> relu -> 0.
    return torch.log1p(torch.relu(out.float()))


class LexEchoPooling(torch.nn.Module):
    """``forward(weights (B, T), input_ids (B, T), mask (B, T), size) -> (B, size)``: sum of each
    source id's token weights (padding contributes nothing)."""

    method = "sum_per_source_id"

    def config(self) -> dict[str, Any]:
        return {"method": self.method}

    def forward(self, weights, input_ids, mask, size: int):
        w = (weights * mask.to(weights.dtype)).float()
        out = torch.zeros((weights.shape[0], int(size)), dtype=torch.float32, device=weights.device)
        return out.scatter_add(1, input_ids.long(), w)
