"""Pooling: per-token outputs of a head -> one vector per text (docs/encoders.md, "How encoders are composed").

:class:`MaxLog1pReluPooling`: SPLADE's ``u_j = max_i log(1 + ReLU(w_ij))`` (Formal et al., SIGIR 2021, eq. 2;
SPLARE applies it to SAE latents), computed ``chunk_tokens`` token states at a time so the full
``[batch, tokens, vocabulary]`` tensor never exists; exact, since log1p(ReLU(.)) is monotonic.
:class:`LexEchoPooling`: MILCO's ``echo_t = sum_{i: id_i = t} w_i``. ``skip`` leaves out the BOS (an
attention sink, the same for every text under causal attention), every special token, or nothing.
"""

from __future__ import annotations

from typing import Any, Callable, Literal

import torch

from .config import ConfigModule

Skip = Literal["none", "bos", "special"]
SKIPS = ("none", "bos", "special")
# Token rows per chunk: 512 x 30,522 float32 logits = 62 MB; x 131,072 latents = 268 MB.
DEFAULT_CHUNK_TOKENS = 512


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


class MaxLog1pReluPooling(ConfigModule, torch.nn.Module):
    """``forward(head, hidden (B, T, H), features) -> (B, V)`` = max over pooled tokens of log1p(relu(head(h)))."""

    method = "max_log1p_relu"
    config_keys = ("skip",)  # chunk_tokens changes memory, not the vectors: not recorded

    def __init__(self, chunk_tokens: int = DEFAULT_CHUNK_TOKENS, skip: Skip = "none"):
        super().__init__()
        if int(chunk_tokens) <= 0:
            raise ValueError(f"chunk_tokens must be positive, got {chunk_tokens}")
        if skip not in SKIPS:
            raise ValueError(f"skip must be one of {SKIPS}, got {skip!r}")
        self.chunk_tokens, self.skip = int(chunk_tokens), skip
        # Training sets this with gradient checkpointing (train.engine): each chunk's head output is then
        # recomputed in the backward pass instead of kept, so a 131,072-latent SAE's token latents are
        # never held for the whole batch (16 x 10 texts x 512 tokens would be 21 GB in bf16).
        self.checkpoint_chunks = False

    def config(self) -> dict[str, Any]:
        return {"method": self.method, **super().config()}

    def forward(self, head: Callable, hidden, features):
        """``features``: the batch's ``attention_mask`` (and ``special_tokens_mask`` when ``skip`` needs it)."""
        mask = pool_mask(features["attention_mask"], features.get("special_tokens_mask"), self.skip)
        return max_log1p_relu_chunked(head, hidden, mask, self.chunk_tokens, checkpoint=self.checkpoint_chunks)


def max_log1p_relu_chunked(head: Callable, hidden, mask, chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
                           checkpoint: bool = False):
    """max over masked tokens of log1p(relu(head(hidden))), ``chunk_tokens`` token rows at a time -> (B, V) float32.

    Only pooled tokens go through the head (padding rows are dropped first, so length-sorted or not, a
    batch costs its real tokens); rows keep text order, so each chunk's rows of a text are contiguous and
    max-reduced at once. Chunks have a fixed number of rows, so the allocation is the same size every time.

    ``checkpoint`` (training, with autograd on): each chunk's head + max is run under
    ``torch.utils.checkpoint``, so autograd keeps only the chunk's input rows and its per-text maxima, and
    recomputes the (rows, V) head output in the backward pass. Values and gradients are the same.
    """
    b = mask.shape[0]
    keep = mask.bool()
    rows = hidden[keep]  # (real tokens, H), text 0's tokens first
    bounds = [0, *torch.cumsum(keep.sum(dim=1), 0).tolist()]
    recompute = checkpoint and torch.is_grad_enabled()
    out: list = [None] * b
    first = 0  # the first text that may still have rows at or after `s`
    for s in range(0, rows.shape[0], chunk_tokens):
        e = min(s + chunk_tokens, rows.shape[0])
        while bounds[first + 1] <= s:
            first += 1
        # (text, start, end) of each text's rows inside this chunk, relative to s
        segs = []
        d = first
        while d < b and bounds[d] < e:
            a, z = max(bounds[d], s) - s, min(bounds[d + 1], e) - s
            if z > a:
                segs.append((d, a, z))
            d += 1

        def chunk_max(r, segs=segs):
            x = head(r)
            return torch.stack([x[a:z].amax(dim=0) for _, a, z in segs])

        if recompute:
            from torch.utils.checkpoint import checkpoint as ckpt

            parts = ckpt(chunk_max, rows[s:e], use_reentrant=False)
        else:
            parts = chunk_max(rows[s:e])
        for i, (d, _, _) in enumerate(segs):
            out[d] = parts[i] if out[d] is None else torch.maximum(out[d], parts[i])
    if any(o is None for o in out):  # a text with no pooled token (empty after `skip`): weight 0 everywhere
        like = next((o for o in out if o is not None), None)
        if like is None:
            like = head(hidden[:1, :1]).reshape(-1)
        out = [like.new_full(like.shape, float("-inf")) if o is None else o for o in out]
    # -inf (no pooled token) -> relu -> 0.
    return torch.log1p(torch.relu(torch.stack(out).float()))


class MaxLog1pLog1pReluPooling(MaxLog1pReluPooling):
    """``log1p`` of :class:`MaxLog1pReluPooling`: sentence-transformers' ``log1p_relu`` SPLADE activation
    (OpenSearch's doc-v3 models, arXiv 2504.14839). ``log1p`` is monotonic, so applying it once more after
    the max equals applying it to every token before it."""

    method = "max_log1p_log1p_relu"

    def forward(self, head: Callable, hidden, features):
        return torch.log1p(super().forward(head, hidden, features))


class LexEchoPooling(ConfigModule, torch.nn.Module):
    """``forward(weights (B, T), input_ids (B, T), mask (B, T), size) -> (B, size)``: sum of each
    source id's token weights (padding contributes nothing)."""

    method = "sum_per_source_id"

    def config(self) -> dict[str, Any]:
        return {"method": self.method}  # no settings of its own

    def forward(self, weights, input_ids, mask, size: int):
        w = (weights * mask.to(weights.dtype)).float()
        out = torch.zeros((weights.shape[0], int(size)), dtype=torch.float32, device=weights.device)
        return out.scatter_add(1, input_ids.long(), w)
