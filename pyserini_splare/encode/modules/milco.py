"""MILCO head: connector + English MLM head (pivot view) and LexEcho (source view), with its pooling.

Nguyen et al., "MILCO: Learned Sparse Retrieval Across Languages via a Multilingual Connector" (2025; code:
github.com/thongnt99/milco)::

    pivot_j  = max_i log(1 + ReLU(MLM(GELU(H_i W_p + b_p))_j))     over the English WordPiece vocabulary
    echo_t   = sum_{i: id_i = t} scale * ReLU(H_i w_e + b_e)        one weight per source token id

:class:`MilcoPooling` returns ``[pivot | echo]``, so the reference score is one dot product
(docs/splare-checkpoint.md, "MILCO").
"""

from __future__ import annotations

from typing import Any

import torch

from ..._errors import UsageError
from .config import ConfigModule
from .pooling import DEFAULT_CHUNK_TOKENS, LexEchoPooling, max_log1p_relu_chunked


def sub_state(state: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def strict_load(module, sd: dict, what: str, allow_missing: tuple[str, ...] = ()) -> None:
    res = module.load_state_dict(sd, strict=False)
    missing = [k for k in res.missing_keys if not k.startswith(allow_missing)]
    if missing:
        raise UsageError(f"MILCO checkpoint lacks {what} weights: {', '.join(missing[:5])}")


class MilcoHead(ConfigModule, torch.nn.Module):
    """``pivot(hidden) -> English logits``; ``echo_weights(hidden) -> (B, T)`` LexEcho token weights."""

    def __init__(self, projector, mlm_head, echo=None, scale=None):
        super().__init__()
        self.projector, self.mlm_head, self.echo = projector, mlm_head, echo
        self.register_buffer("scale", None if scale is None else torch.as_tensor(scale).reshape(1))

    @property
    def has_echo(self) -> bool:
        return self.echo is not None

    config_keys = ("has_echo",)

    def config(self) -> dict[str, Any]:
        return {"head": "milco", "echo": self.has_echo}

    def pivot(self, hidden):
        return self.mlm_head(torch.nn.functional.gelu(self.projector(hidden)))

    def echo_weights(self, hidden):
        return torch.relu(self.echo(hidden).squeeze(-1)) * self.scale

    @classmethod
    def from_state(cls, state: dict, m_hidden: int, en_config, echo: bool) -> MilcoHead:
        """The head from a reference checkpoint's ``projector.*``, ``mlm_head.*``, ``echo.*``, ``scale``."""
        from transformers.models.bert.modeling_bert import BertOnlyMLMHead

        en_hidden = int(en_config.hidden_size)
        projector = torch.nn.Linear(m_hidden, en_hidden)
        strict_load(projector, sub_state(state, "projector."), "projector")
        mlm_head = BertOnlyMLMHead(en_config)
        head_sd = sub_state(state, "mlm_head.")
        # The reference model ties decoder.bias to predictions.bias and saves only the latter.
        if "predictions.decoder.bias" not in head_sd and "predictions.bias" in head_sd:
            head_sd["predictions.decoder.bias"] = head_sd["predictions.bias"]
        strict_load(mlm_head, head_sd, "MLM head")
        lin = scale = None
        if echo:
            lin = torch.nn.Linear(m_hidden, 1)
            strict_load(lin, sub_state(state, "echo."), "LexEcho")
            if "scale" not in state:
                raise UsageError("MILCO checkpoint with echo lacks 'scale'")
            scale = state["scale"].float().reshape(1)
        return cls(projector, mlm_head, lin, scale)


class MilcoPooling(ConfigModule, torch.nn.Module):
    """``forward(head, hidden, features) -> (B, en_vocab + m_vocab)``: max log1p(ReLU) of the pivot logits,
    then the LexEcho sums per source id (zeros without an echo head)."""

    method = "max_log1p_relu+sum_per_source_id"
    config_keys = ("en_vocab_size", "m_vocab_size")

    def __init__(self, en_vocab_size: int, m_vocab_size: int, chunk_tokens: int = DEFAULT_CHUNK_TOKENS):
        super().__init__()
        self.en_vocab_size, self.m_vocab_size, self.chunk_tokens = int(en_vocab_size), int(m_vocab_size), chunk_tokens
        self.echo = LexEchoPooling()

    def config(self) -> dict[str, Any]:
        return {"method": self.method, "views": ["max_log1p_relu", "sum_per_source_id"]}

    def forward(self, head: MilcoHead, hidden, features):
        mask = features["attention_mask"]
        pivot = max_log1p_relu_chunked(head.pivot, hidden, mask, self.chunk_tokens)
        if head.has_echo:
            echo = self.echo(head.echo_weights(hidden), features["input_ids"], mask, self.m_vocab_size)
        else:
            echo = pivot.new_zeros((pivot.shape[0], self.m_vocab_size))
        return torch.cat([pivot, echo], dim=1)
