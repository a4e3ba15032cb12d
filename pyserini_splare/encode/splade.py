"""BERT-style SPLADE as a configuration of :class:`~.model.SparseModel`: MLM trunk -> MLM head -> max log1p(ReLU).

SPLADE (Formal et al., SIGIR 2021; v2/v3, arXiv 2109.10086 / 2403.06789), e.g. ``naver/splade-v3`` and
SPLADE-tiny; features are WordPiece strings, as in Pyserini's SPLADE indexes. Checkpoint: a Hugging Face
masked-LM folder.
"""

from __future__ import annotations

from typing import Any

from ..vectors import VocabSpace
from .batching import dtype_name
from .lengths import lengths, reject_unknown
from .model import DEFAULT_BATCH_SIZE, SparseModel
from .modules.pooling import MaxLog1pReluPooling

# BERT's learned position embeddings stop at 512: longer requests are clamped to what the model has.
BERT_MAX_LENGTH = 512


def vocab_terms(tokenizer, size: int) -> list[str]:
    """Token strings by id for ``range(size)`` (ids beyond the tokenizer, if the head is padded, become '')."""
    toks = tokenizer.convert_ids_to_tokens(list(range(min(size, len(tokenizer)))))
    toks = [t if isinstance(t, str) else "" for t in toks]
    return toks + [""] * (size - len(toks))


def spec(model: SparseModel) -> dict[str, Any]:
    """meta.json's record of a kind that its folder alone describes (``splade``, ``bge-m3``)."""
    return {"type": model.kind, "path": model.path, "max_length_query": model.max_length_query,
            "max_length_doc": model.max_length_doc, "dtype": dtype_name(model.trunk.dtype)}


def save(model: SparseModel, directory: str) -> None:
    from .modules.vocab import save_mlm

    save_mlm(model.trunk, directory)


def load_splade(path_or_id: str, device: str = "cpu", dtype: str | None = None, max_length_query: int | None = None,
                max_length_doc: int | None = None, trust_remote_code: bool = False,
                batch_size: int = DEFAULT_BATCH_SIZE, **_ignored) -> SparseModel:
    """Factory registered as ``splade`` in ``ENCODERS``: ``splade:naver/splade-v3`` or ``splade:/path/to/model``."""
    reject_unknown(_ignored, "splade")
    from .modules.vocab import load_vocab_model

    path = str(path_or_id)
    trunk, head = load_vocab_model(path, "mlm", device=device, dtype=dtype, trust_remote_code=trust_remote_code)
    cfg = trunk.model.config
    limit = min(getattr(cfg, "max_position_embeddings", BERT_MAX_LENGTH) or BERT_MAX_LENGTH, BERT_MAX_LENGTH)
    q, d, over = lengths((limit, limit), max_length_query, max_length_doc, limit)
    space = VocabSpace(vocab_terms(trunk.tokenizer, head.vocab_size), name="bert-wordpiece")
    return SparseModel(trunk, head, MaxLog1pReluPooling(), space=space, kind="splade", path=path,
                       max_length_query=q, max_length_doc=d, overrides=over, batch_size=batch_size)

