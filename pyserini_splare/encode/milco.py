"""MILCO: multilingual learned sparse retrieval through a connector into an English lexical space.

Nguyen et al., "MILCO: Learned Sparse Retrieval Across Languages via a Multilingual Connector" (2025;
code: github.com/thongnt99/milco, ``milco/model/milco.py``). For a text tokenized by the multilingual
encoder (bge-m3 / XLM-R), with hidden states H (tokens x 1024)::

    pivot_j  = max_i log(1 + ReLU(MLM(GELU(H_i W_p + b_p))_j))     over 30,522 English WordPiece terms
    echo_t   = sum_{i: id_i = t} scale * ReLU(H_i w_e + b_e)        LexEcho: one weight per source token id

MLM is SPLADE-v3's BERT MLM head (transform dense + GELU + LayerNorm + decoder). The score of a query and
a document is pivot_q . pivot_d + echo_q . echo_d; in the reference code the echo term is a sum over all
pairs of equal source ids, which equals the dot product of the per-id *sums* above.

The two views live side by side in a :class:`~pyserini_splare.vectors.CompositeSpace`: English
WordPiece strings (as Pyserini's SPLADE writes them) then ``X{xlmr_id}`` pseudo-terms; if any English
token could be read as an ``X`` term, the English view falls back to ``e{id}`` terms so views never collide.

Checkpoints: the reference layout (``config.json`` with ``multilingual_encoder_checkpoint``,
``lsr_encoder_checkpoint``, ``en_vocab_size``, ``m_vocab_size``, ``echo``; weights ``m_model.*``,
``projector.*``, ``mlm_head.predictions.*``, ``echo.*``, ``scale``) is read from safetensors without
running remote code. ``trust_remote_code=True`` instead runs the checkpoint's own code
(``omai-research/milco-*``) through ``AutoModel`` and uses its ``encode``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._cli import UsageError
from ..vectors import (
    CompositeSpace,
    FeatureSpace,
    PrefixedSpace,
    SparseVector,
    VocabSpace,
)
from ._base import Kind, SparseEncoder, check_kind
from .backbone import quiet_transformers, resolve_path, torch_dtype
from .splare import sorted_batches

ECHO_PREFIX = "X"
EN_FALLBACK_PREFIX = "e"
DEFAULT_MAX_LENGTH_QUERY = 256
DEFAULT_MAX_LENGTH_DOC = 512  # MILCO's training passage length


def milco_space(en_vocab: list[str], m_vocab_size: int, name: str = "milco") -> FeatureSpace:
    """English view (WordPiece strings, or ``e{id}`` if any could collide) + ``X{id}`` LexEcho view."""
    echo = PrefixedSpace(ECHO_PREFIX, m_vocab_size, name="lexecho")
    en: FeatureSpace = VocabSpace(en_vocab, name="english")
    for i in range(en.size):
        try:
            echo.id(en.term(i))
        except KeyError:
            continue
        en = PrefixedSpace(EN_FALLBACK_PREFIX, len(en_vocab), name="english")
        break
    return CompositeSpace([en, echo], name=name)


@dataclass
class MilcoParts:
    m_model: Any
    projector: Any
    mlm_head: Any
    echo: Any  # nn.Linear(m_hidden, 1) or None
    scale: Any  # tensor (1,) or None


def _read_config(path: str) -> dict:
    cfg_file = os.path.join(path, "config.json")
    try:
        with open(cfg_file, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise UsageError(f"cannot read MILCO config {cfg_file}: {e}") from None


def _read_state(path: str) -> dict:
    """All tensors of a safetensors checkpoint (single file or sharded with an index)."""
    from safetensors.torch import load_file

    single = os.path.join(path, "model.safetensors")
    index = os.path.join(path, "model.safetensors.index.json")
    if os.path.exists(single):
        files = [single]
    elif os.path.exists(index):
        with open(index, encoding="utf-8") as f:
            files = sorted({os.path.join(path, v) for v in json.load(f)["weight_map"].values()})
    elif os.path.exists(os.path.join(path, "pytorch_model.bin")):
        raise UsageError(f"{path}: only pytorch_model.bin (a pickle) found; convert it to model.safetensors, "
                         "or pass trust_remote_code to load it with the checkpoint's own code")
    else:
        raise UsageError(f"{path}: no model.safetensors")
    state: dict = {}
    for f in files:
        state.update(load_file(f))
    return state


def _sub_state(state: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _strict_load(module, sd: dict, what: str, allow_missing: tuple[str, ...] = ()) -> None:
    res = module.load_state_dict(sd, strict=False)
    missing = [k for k in res.missing_keys if not k.startswith(allow_missing)]
    if missing:
        raise UsageError(f"MILCO checkpoint lacks {what} weights: {', '.join(missing[:5])}")


def build_parts(path: str, cfg: dict, state: dict, trust_remote_code: bool = False) -> MilcoParts:
    """Sub-modules from the configs the checkpoint names and its (prefixed) weights."""
    import torch
    from transformers import AutoConfig, AutoModel
    from transformers.models.bert.modeling_bert import BertOnlyMLMHead

    m_src = resolve_path(cfg["multilingual_encoder_checkpoint"], path)
    en_src = resolve_path(cfg["lsr_encoder_checkpoint"], path)
    try:
        m_cfg = AutoConfig.from_pretrained(m_src, trust_remote_code=trust_remote_code)
        en_cfg = AutoConfig.from_pretrained(en_src, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot load the MILCO sub-model configs ({m_src}, {en_src}): {e}") from None
    en_vocab = int(cfg.get("en_vocab_size") or en_cfg.vocab_size)
    en_cfg.vocab_size = en_vocab
    with quiet_transformers():
        m_model = AutoModel.from_config(m_cfg)
    _strict_load(m_model, _sub_state(state, "m_model."), "multilingual encoder", allow_missing=("pooler.",))
    m_hidden = int(cfg.get("m_hidden_size") or m_cfg.hidden_size)
    en_hidden = int(cfg.get("en_hidden_size") or en_cfg.hidden_size)
    projector = torch.nn.Linear(m_hidden, en_hidden)
    _strict_load(projector, _sub_state(state, "projector."), "projector")
    mlm_head = BertOnlyMLMHead(en_cfg)
    head_sd = _sub_state(state, "mlm_head.")
    # The reference model ties decoder.bias to predictions.bias and saves only the latter.
    if "predictions.decoder.bias" not in head_sd and "predictions.bias" in head_sd:
        head_sd["predictions.decoder.bias"] = head_sd["predictions.bias"]
    _strict_load(mlm_head, head_sd, "MLM head")
    echo = scale = None
    if cfg.get("echo"):
        echo = torch.nn.Linear(m_hidden, 1)
        _strict_load(echo, _sub_state(state, "echo."), "LexEcho")
        if "scale" not in state:
            raise UsageError("MILCO checkpoint with echo lacks 'scale'")
        scale = state["scale"].float().reshape(1)
    return MilcoParts(m_model, projector, mlm_head, echo, scale)


class MilcoEncoder(SparseEncoder):
    """bge-m3 hidden states -> connector -> SPLADE-v3 MLM head (pivot view) + LexEcho (source view)."""

    def __init__(self, parts: MilcoParts, tokenizer, en_vocab: list[str], path: str, device: str = "cpu",
                 dtype: Any = None, max_length_query: int = DEFAULT_MAX_LENGTH_QUERY,
                 max_length_doc: int = DEFAULT_MAX_LENGTH_DOC, batch_size: int = 32, remote_model: Any = None,
                 m_vocab_size: int | None = None):
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.parts, self.tokenizer, self.path, self.device = parts, tokenizer, path, device
        self.remote_model = remote_model
        self.max_length_query, self.max_length_doc = int(max_length_query), int(max_length_doc)
        self.batch_size = int(batch_size)
        self.en_size = len(en_vocab)
        # XLM-R's config vocab (250,002) can exceed len(tokenizer); ids must fit either.
        self.m_vocab_size = max(int(m_vocab_size or 0), len(tokenizer))
        self.space = milco_space(en_vocab, self.m_vocab_size, name=f"milco:{os.path.basename(os.path.normpath(path))}")
        self.dtype = torch_dtype(dtype)
        if parts is not None:
            for mod in (parts.m_model, parts.projector, parts.mlm_head, parts.echo):
                if mod is not None:
                    mod.to(device=device, dtype=self.dtype).eval()
                    for p in mod.parameters():
                        p.requires_grad_(False)
            if parts.scale is not None:
                parts.scale = parts.scale.to(device=device, dtype=self.dtype)

    @property
    def has_echo(self) -> bool:
        return self.remote_model is not None or self.parts.echo is not None

    def forward(self, input_ids, attention_mask):
        """Returns (pivot (batch, en_vocab), echo weights (batch, tokens) or None)."""
        import torch

        from .pooling import max_log1p_relu

        if self.remote_model is not None:
            out = self.remote_model.encode(input_ids=input_ids, attention_mask=attention_mask)
            return (out[0], out[1][1]) if isinstance(out, tuple) else (out, None)
        p = self.parts
        h = p.m_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        logits = p.mlm_head(torch.nn.functional.gelu(p.projector(h)))
        pivot = max_log1p_relu(logits, attention_mask)
        if p.echo is None:
            return pivot, None
        echo = torch.relu(p.echo(h).squeeze(-1)) * attention_mask.to(h.dtype) * p.scale
        return pivot, echo

    def encode(self, texts: Sequence[str], kind: Kind = "doc") -> list[SparseVector]:
        import numpy as np
        import torch

        check_kind(kind)
        texts = list(texts)
        if not texts:
            return []
        max_len = self.max_length_query if kind == "query" else self.max_length_doc
        lengths = [len(x) for x in self.tokenizer(texts, truncation=True, max_length=max_len)["input_ids"]]
        out: list[SparseVector | None] = [None] * len(texts)
        for idx in sorted_batches(lengths, self.batch_size):
            enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=max_len,
                                 return_tensors="pt")
            ids, mask = enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)
            with torch.inference_mode():
                pivot, echo = self.forward(ids, mask)
            pivot = pivot.float().cpu().numpy()
            for row, i in enumerate(idx):
                dense = np.zeros(self.space.size, dtype=np.float32)
                dense[: self.en_size] = pivot[row]
                if echo is not None:
                    # Sum per source id (np.add.at accumulates repeats), offset past the English view.
                    np.add.at(dense, self.en_size + ids[row].cpu().numpy(), echo[row].float().cpu().numpy())
                out[i] = SparseVector.from_dense(dense)
        return out  # type: ignore[return-value]

    def spec(self) -> dict[str, Any]:
        return {"type": "milco", "path": self.path, "echo": self.has_echo, "max_length_query": self.max_length_query,
                "max_length_doc": self.max_length_doc, "remote_code": self.remote_model is not None}


def _en_vocab(path: str, cfg: dict, trust_remote_code: bool) -> list[str]:
    from transformers import AutoTokenizer

    src = resolve_path(cfg["lsr_encoder_checkpoint"], path)
    try:
        vocab = AutoTokenizer.from_pretrained(src, trust_remote_code=trust_remote_code).get_vocab()
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot load the English (LSR) tokenizer {src!r}: {e}") from None
    inv = sorted(vocab.items(), key=lambda kv: kv[1])
    if [i for _, i in inv] != list(range(len(inv))):
        raise UsageError(f"English vocabulary of {src!r} has gaps in its ids")
    words = [w for w, _ in inv]
    size = int(cfg.get("en_vocab_size") or len(words))
    if size < len(words):
        raise UsageError(f"en_vocab_size {size} is smaller than the English tokenizer's {len(words)} tokens")
    return words + [f"[pad{i}]" for i in range(len(words), size)]


def load_milco(path_or_id: str, device: str = "cpu", dtype: Any = None, max_length: int | None = None,
               trust_remote_code: bool = False, batch_size: int = 32, **_ignored) -> MilcoEncoder:
    """A MILCO checkpoint directory in the reference layout (see module docstring)."""
    from transformers import AutoTokenizer

    path = os.fspath(path_or_id)
    if os.path.isdir(path):
        path = os.path.abspath(path)  # spec() is recorded in meta.json and read back from other directories
    if not os.path.isdir(path) and not trust_remote_code:
        raise UsageError(f"MILCO checkpoint {path!r} is not a local directory; hub checkpoints "
                             "(omai-research/milco-*) run remote code: pass trust_remote_code")
    cfg = _read_config(path) if os.path.isdir(path) else {}
    ql = dl = None
    if max_length is not None:
        if int(max_length) <= 0:
            raise UsageError(f"max_length must be positive, got {max_length}")
        ql = dl = int(max_length)
    lengths = {"max_length_query": ql or DEFAULT_MAX_LENGTH_QUERY, "max_length_doc": dl or DEFAULT_MAX_LENGTH_DOC}
    if trust_remote_code:
        from transformers import AutoModel

        model = AutoModel.from_pretrained(path, trust_remote_code=True, dtype=torch_dtype(dtype)).to(device).eval()
        cfg = model.config.to_dict()
        en_vocab = [t for t, _ in sorted(model.en_tokenizer.vocab.items(), key=lambda kv: kv[1])]
        return MilcoEncoder(None, model.m_tokenizer, en_vocab, path, device=device, dtype=dtype,
                            batch_size=batch_size, remote_model=model,
                            m_vocab_size=int(cfg.get("m_vocab_size") or 0), **lengths)
    for key in ("multilingual_encoder_checkpoint", "lsr_encoder_checkpoint"):
        if key not in cfg:
            raise UsageError(f"{path}/config.json lacks {key!r}: not a MILCO checkpoint")
    parts = build_parts(path, cfg, _read_state(path))
    tok_src = path if os.path.exists(os.path.join(path, "tokenizer.json")) or os.path.exists(
        os.path.join(path, "tokenizer_config.json")) else resolve_path(cfg["multilingual_encoder_checkpoint"], path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(tok_src)
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot load the multilingual tokenizer {tok_src!r}: {e}") from None
    m_vocab = int(cfg.get("m_vocab_size") or parts.m_model.config.vocab_size)
    return MilcoEncoder(parts, tokenizer, _en_vocab(path, cfg, False), path, device=device, dtype=dtype,
                        batch_size=batch_size, m_vocab_size=m_vocab, **lengths)
