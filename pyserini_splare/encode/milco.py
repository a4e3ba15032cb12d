"""MILCO: multilingual learned sparse retrieval through a connector into an English lexical space.

Nguyen et al., "MILCO: Learned Sparse Retrieval Across Languages via a Multilingual Connector" (2025;
code: github.com/thongnt99/milco). The formulas, the reference checkpoint layout this module reads without
running remote code, and ``trust_remote_code=True`` (the checkpoint's own ``encode``): docs/splare-checkpoint.md,
"MILCO". The pivot and LexEcho views live side by side in a :class:`~pyserini_splare.vectors.CompositeSpace`:
English WordPiece strings then ``X{xlmr_id}`` pseudo-terms; if an English token could be read as an ``X``
term, the English view falls back to ``e{id}`` terms so the views never collide. The composed model: trunk =
the multilingual encoder, head = :class:`~.modules.milco.MilcoHead`, pooling = :class:`~.modules.milco.MilcoPooling`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from .._errors import UsageError
from ..vectors import CompositeSpace, FeatureSpace, PrefixedSpace, SparseVector, VocabSpace
from .base import Kind, SparseEncoder, check_kind
from .batching import length_sorted_batches, torch_dtype
from .lengths import lengths, reject_unknown
from .model import SparseModel
from .modules.milco import strict_load, sub_state
from .modules.trunk import Trunk, load_config, load_tokenizer, quiet_transformers, resolve_path

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


def spec(model: SparseModel) -> dict[str, Any]:
    return {"type": "milco", "path": model.path, "echo": model.head.has_echo,
            "max_length_query": model.max_length_query, "max_length_doc": model.max_length_doc,
            "remote_code": False}


def save(model: SparseModel, directory: str) -> None:
    """Write the reference layout :func:`load_milco` reads: ``config.json`` (the source config, with the
    two sub-model paths made absolute so the copy loads from anywhere), ``model.safetensors`` with
    ``m_model.*``, ``projector.*``, ``mlm_head.*`` (``decoder.bias`` left out: the reference ties it to
    ``predictions.bias``), ``echo.*`` and ``scale``, and the multilingual tokenizer."""
    from safetensors.torch import save_file

    from .._outputs import atomic_file

    head = model.head
    state = {f"m_model.{k}": v for k, v in model.trunk.model.state_dict().items()}
    state |= {f"projector.{k}": v for k, v in head.projector.state_dict().items()}
    state |= {f"mlm_head.{k}": v for k, v in head.mlm_head.state_dict().items() if k != "predictions.decoder.bias"}
    if head.has_echo:
        state |= {f"echo.{k}": v for k, v in head.echo.state_dict().items()}
        state["scale"] = head.scale
    # safetensors refuses tensors that share storage (tied embeddings): one contiguous copy each.
    save_file({k: v.detach().to("cpu").clone().contiguous() for k, v in state.items()},
              os.path.join(directory, "model.safetensors"))
    cfg = dict(model.settings)
    base = model.path if os.path.isdir(model.path) else None
    for key in ("multilingual_encoder_checkpoint", "lsr_encoder_checkpoint"):
        local = resolve_path(cfg[key], base)
        if os.path.exists(local):
            cfg[key] = os.path.abspath(local)
    cfg["echo"] = head.has_echo
    with atomic_file(os.path.join(directory, "config.json")) as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    model.trunk.tokenizer.save_pretrained(directory)


class RemoteMilcoEncoder(SparseEncoder):
    """A hub MILCO checkpoint run through its own code (``trust_remote_code``): its ``encode`` gives the
    pivot view and the echo token weights, summed per source id here."""

    def __init__(self, model, tokenizer, en_size: int, m_vocab_size: int, path: str, device: str,
                 max_length_query: int, max_length_doc: int, batch_size: int = 32):
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.model, self.tokenizer, self.path, self.device = model, tokenizer, path, device
        self.max_length_query, self.max_length_doc, self.batch_size = max_length_query, max_length_doc, batch_size
        self.en_size, self.m_vocab_size = en_size, m_vocab_size
        self.space = None  # set by load_milco

    def encode(self, texts: Sequence[str], kind: Kind = "doc") -> list[SparseVector]:
        import numpy as np
        import torch

        check_kind(kind)
        texts = list(texts)
        max_len = self.max_length_query if kind == "query" else self.max_length_doc
        enc = self.tokenizer(texts, truncation=True, max_length=max_len)
        out: list[SparseVector | None] = [None] * len(texts)
        for idx in length_sorted_batches([len(x) for x in enc["input_ids"]], self.batch_size):
            batch = self.tokenizer.pad([{"input_ids": enc["input_ids"][i]} for i in idx], return_tensors="pt")
            ids, mask = batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device)
            with torch.inference_mode():
                res = self.model.encode(input_ids=ids, attention_mask=mask)
            pivot, echo = (res[0], res[1][1]) if isinstance(res, tuple) else (res, None)
            pivot = pivot.float().cpu().numpy()
            for row, i in enumerate(idx):
                dense = np.zeros(self.space.size, dtype=np.float32)
                dense[: self.en_size] = pivot[row]
                if echo is not None:
                    # Sum per source id (np.add.at accumulates repeats), offset past the English view.
                    np.add.at(dense, self.en_size + ids[row].cpu().numpy(),
                              (echo[row] * mask[row]).float().cpu().numpy())
                out[i] = SparseVector.from_dense(dense)
        return out  # type: ignore[return-value]

    def pooling_meta(self) -> dict[str, Any]:
        from .modules.milco import MilcoPooling

        return {"method": MilcoPooling.method, "views": ["max_log1p_relu", "sum_per_source_id"]}

    def spec(self) -> dict[str, Any]:
        return {"type": "milco", "path": self.path, "echo": True, "max_length_query": self.max_length_query,
                "max_length_doc": self.max_length_doc, "remote_code": True}


def load_milco(path_or_id: str, device: str = "cpu", dtype: Any = None, max_length_query: int | None = None,
               max_length_doc: int | None = None, trust_remote_code: bool = False, batch_size: int = 32,
               **_ignored) -> SparseModel | RemoteMilcoEncoder:
    """A MILCO checkpoint directory in the reference layout (see module docstring)."""
    reject_unknown(_ignored, "milco")
    from transformers import AutoModel

    from .modules.milco import MilcoHead, MilcoPooling

    path = os.fspath(path_or_id)
    if os.path.isdir(path):
        path = os.path.abspath(path)  # spec() is recorded in meta.json and read back from other directories
    if not os.path.isdir(path) and not trust_remote_code:
        raise UsageError(f"MILCO checkpoint {path!r} is not a local directory; hub checkpoints "
                         "(omai-research/milco-*) run remote code: pass trust_remote_code")
    q, d, over = lengths((DEFAULT_MAX_LENGTH_QUERY, DEFAULT_MAX_LENGTH_DOC), max_length_query, max_length_doc)
    tdtype = torch_dtype(dtype)
    if trust_remote_code:
        model = AutoModel.from_pretrained(path, trust_remote_code=True, dtype=tdtype).to(device).eval()
        cfg = model.config.to_dict()
        en_vocab = [t for t, _ in sorted(model.en_tokenizer.vocab.items(), key=lambda kv: kv[1])]
        m_size = max(int(cfg.get("m_vocab_size") or 0), len(model.m_tokenizer))
        enc = RemoteMilcoEncoder(model, model.m_tokenizer, len(en_vocab), m_size, path, device, q, d, batch_size)
        enc.space = milco_space(en_vocab, m_size, name=f"milco:{os.path.basename(os.path.normpath(path))}")
        return enc
    cfg = _read_config(path)
    for key in ("multilingual_encoder_checkpoint", "lsr_encoder_checkpoint"):
        if key not in cfg:
            raise UsageError(f"{path}/config.json lacks {key!r}: not a MILCO checkpoint")
    state = _read_state(path)
    m_src = resolve_path(cfg["multilingual_encoder_checkpoint"], path)
    en_src = resolve_path(cfg["lsr_encoder_checkpoint"], path)
    m_cfg, en_cfg = load_config(m_src), load_config(en_src)
    en_cfg.vocab_size = int(cfg.get("en_vocab_size") or en_cfg.vocab_size)
    with quiet_transformers():
        m_model = AutoModel.from_config(m_cfg)
    strict_load(m_model, sub_state(state, "m_model."), "multilingual encoder", allow_missing=("pooler.",))
    m_hidden = int(cfg.get("m_hidden_size") or m_cfg.hidden_size)
    if cfg.get("en_hidden_size"):
        en_cfg.hidden_size = int(cfg["en_hidden_size"])
    head = MilcoHead.from_state(state, m_hidden, en_cfg, bool(cfg.get("echo")))
    has_tok = any(os.path.exists(os.path.join(path, f)) for f in ("tokenizer.json", "tokenizer_config.json"))
    tokenizer = load_tokenizer(path if has_tok else m_src)
    trunk = Trunk(m_model, m_model, tokenizer, backbone=cfg["multilingual_encoder_checkpoint"], layer=None,
                  attention=None)
    en_vocab = _en_vocab(path, cfg, False)
    # XLM-R's config vocab (250,002) can exceed len(tokenizer); ids must fit either.
    m_size = max(int(cfg.get("m_vocab_size") or m_model.config.vocab_size), len(tokenizer))
    space = milco_space(en_vocab, m_size, name=f"milco:{os.path.basename(os.path.normpath(path))}")
    model = SparseModel(trunk, head, MilcoPooling(len(en_vocab), m_size), space=space, kind="milco", path=path,
                        max_length_query=q, max_length_doc=d, settings=cfg, overrides=over, batch_size=batch_size)
    return model.to(device=device, dtype=tdtype).eval()
