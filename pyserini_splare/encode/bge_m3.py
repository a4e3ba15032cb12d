"""BGE-M3's sparse (lexical) view as a configuration of :class:`~.model.SparseModel`.

Chen et al. (2024, arXiv 2402.03216), eq. 2: ``w_i = ReLU(W_lex^T h_i)`` per token of the XLM-R trunk, max per
token id, FlagEmbedding's special tokens dropped, no log1p. Checkpoint: BGE-M3's own folder, whose
``sparse_linear.pt`` pickle is read with ``torch.load(weights_only=True)``; features are ``t{id}`` pseudo-terms
(docs/models.md, docs/encoders.md).
"""

from __future__ import annotations

import os
from typing import Any

import torch

from .._errors import UsageError
from ..vectors import PrefixedSpace
from .lengths import lengths, reject_unknown
from .model import DEFAULT_BATCH_SIZE, SparseModel

SPARSE_LINEAR = "sparse_linear.pt"
TERM_PREFIX = "t"
# FlagEmbedding's defaults (query_max_length / passage_max_length); the trunk itself takes 8,192 tokens.
DEFAULT_MAX_LENGTH = 512


class TokenMaxPooling(torch.nn.Module):
    """``forward(head, hidden (B, T, H), features) -> (B, V)``: ``u_t = max_{i: id_i = t} ReLU(head(h_i))``
    over the real tokens, with ``dropped`` ids (the special tokens) left at 0."""

    method = "max_per_token_id"

    def __init__(self, vocab_size: int, dropped: list[int]):
        super().__init__()
        if int(vocab_size) <= 0:
            raise ValueError(f"vocab_size must be positive, got {vocab_size}")
        self.vocab_size = int(vocab_size)
        self.register_buffer("dropped", torch.tensor(sorted(set(dropped)), dtype=torch.long), persistent=False)

    def config(self) -> dict[str, Any]:
        return {"method": self.method, "dropped_ids": self.dropped.tolist()}

    def forward(self, head, hidden, features):
        ids = features["input_ids"].long()
        w = torch.relu(head(hidden)).squeeze(-1).float()
        keep = features["attention_mask"].bool() & ~torch.isin(ids, self.dropped.to(ids.device))
        w = w * keep.to(w.dtype)
        out = torch.zeros((ids.shape[0], self.vocab_size), dtype=torch.float32, device=w.device)
        return out.scatter_reduce(1, ids, w, reduce="amax")


def read_sparse_linear(path: str, hidden_size: int) -> torch.nn.Linear:
    """``sparse_linear.pt`` -> ``Linear(hidden, 1)``; a missing or malformed file is a UsageError."""
    f = os.path.join(path, SPARSE_LINEAR)
    if not os.path.isfile(f):
        raise UsageError(f"{path}: no {SPARSE_LINEAR} (BGE-M3's sparse head): not a BGE-M3 checkpoint folder")
    try:
        state = torch.load(f, map_location="cpu", weights_only=True)
    except Exception as e:  # weights_only refuses any non-tensor pickle: say so in one line
        raise UsageError(f"{f}: not a tensors-only state dict ({str(e).splitlines()[0] if str(e) else e})") from None
    linear = torch.nn.Linear(hidden_size, 1)
    if not isinstance(state, dict) or set(state) != {"weight", "bias"}:
        keys = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise UsageError(f"{f}: expected a state dict with 'weight' and 'bias', found {keys}")
    if tuple(state["weight"].shape) != (1, hidden_size) or tuple(state["bias"].shape) != (1,):
        raise UsageError(f"{f}: weight {tuple(state['weight'].shape)} / bias {tuple(state['bias'].shape)} do not fit "
                         f"a hidden size of {hidden_size} (expected (1, {hidden_size}) and (1,))")
    linear.load_state_dict({k: v.float() for k, v in state.items()})
    return linear


def dropped_ids(tokenizer) -> list[int]:
    """The ids FlagEmbedding's ``_process_token_weights`` leaves out: cls, eos, pad and unk."""
    ids = [getattr(tokenizer, f"{name}_token_id", None) for name in ("cls", "eos", "pad", "unk")]
    return sorted({int(i) for i in ids if i is not None})


def save(model: SparseModel, directory: str) -> None:
    """BGE-M3's layout: the XLM-R folder, its tokenizer and ``sparse_linear.pt`` (what this kind reads)."""
    model.trunk.root.save_pretrained(directory)
    model.trunk.tokenizer.save_pretrained(directory)
    torch.save({k: v.detach().cpu().contiguous() for k, v in model.head.state_dict().items()},
               os.path.join(directory, SPARSE_LINEAR))


def load_bge_m3(path_or_id: str, device: str = "cpu", dtype: str | None = None, max_length_query: int | None = None,
                max_length_doc: int | None = None, trust_remote_code: bool = False,
                batch_size: int = DEFAULT_BATCH_SIZE, **_ignored) -> SparseModel:
    """Factory registered as ``bge-m3`` in ``ENCODERS``: ``bge-m3:/path/to/bge-m3`` (a local folder)."""
    reject_unknown(_ignored, "bge-m3")
    from .modules.trunk import load_trunk

    path = os.fspath(path_or_id)
    if not os.path.isdir(path):
        raise UsageError(f"BGE-M3 checkpoint {path!r} is not a local folder (download BAAI/bge-m3 first: "
                         f"its {SPARSE_LINEAR} is read from the folder)")
    path = os.path.abspath(path)  # spec() is recorded in meta.json and read back from other directories
    if not os.path.isfile(os.path.join(path, SPARSE_LINEAR)):  # refuse before loading the trunk
        read_sparse_linear(path, 1)
    trunk = load_trunk(path, device=device, dtype=dtype, trust_remote_code=trust_remote_code)
    head = read_sparse_linear(path, trunk.hidden_size).to(device=device, dtype=trunk.dtype)
    limit = trunk.max_positions
    q, d, over = lengths((DEFAULT_MAX_LENGTH, DEFAULT_MAX_LENGTH), max_length_query, max_length_doc, limit)
    vocab = max(int(trunk.model.config.vocab_size), len(trunk.tokenizer))
    space = PrefixedSpace(TERM_PREFIX, vocab, name="xlmr")
    pooling = TokenMaxPooling(vocab, dropped_ids(trunk.tokenizer))
    return SparseModel(trunk, head, pooling, space=space, kind="bge-m3", path=path, max_length_query=q,
                       max_length_doc=d, overrides=over, batch_size=batch_size).to(device).eval()
