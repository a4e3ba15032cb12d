"""A model folder's ``tokenizer.json`` run by the ``tokenizers`` library alone.

``AutoTokenizer`` imports torch (2 s and ~300 MB before the first query); encoders with no torch model at
query time tokenize with this instead, with the ids ``PreTrainedTokenizerFast`` gives (the same Rust
tokenizer; tests/test_onnx_encoder.py compares the two).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np

from .._errors import UsageError

TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"


class FastTokenizer:
    """``encode(texts, max_length)`` -> per text ``(ids, special_tokens_mask)``; ``pad`` -> int64 arrays."""

    def __init__(self, directory: str | os.PathLike):
        from tokenizers import Tokenizer

        directory = os.fspath(directory)
        path = os.path.join(directory, TOKENIZER_FILE)
        if not os.path.isfile(path):
            raise UsageError(f"{directory}: no {TOKENIZER_FILE} (a fast tokenizer is needed to encode without torch)")
        try:
            self.tokenizer = Tokenizer.from_file(path)
        except Exception as e:  # the Rust side raises plain Exception for a malformed file
            raise UsageError(f"{path}: not a tokenizers file ({str(e).splitlines()[0] if str(e) else e})") from None
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        cfg = {}
        cfg_path = os.path.join(directory, TOKENIZER_CONFIG)
        if os.path.isfile(cfg_path):
            try:
                with open(cfg_path, encoding="utf-8") as f:
                    cfg = json.load(f)
            except (OSError, json.JSONDecodeError) as e:
                raise UsageError(f"{cfg_path}: malformed JSON ({e})") from None
        n = cfg.get("model_max_length")
        # transformers writes 1e30 for "unset"
        self.model_max_length = int(n) if isinstance(n, (int, float)) and 0 < n < 10 ** 9 else None
        self.pad_id = self._special_id(cfg.get("pad_token"), ("[PAD]", "<pad>"))
        if self.pad_id is None:
            self.pad_id = 0  # padding positions are masked everywhere; any id works

    def _special_id(self, token, fallbacks: Sequence[str]) -> int | None:
        if isinstance(token, dict):
            token = token.get("content")
        for t in ([token] if isinstance(token, str) else []) + list(fallbacks):
            i = self.tokenizer.token_to_id(t)
            if i is not None:
                return int(i)
        return None

    def vocab_size(self) -> int:
        return int(self.tokenizer.get_vocab_size(with_added_tokens=True))

    def id_to_token(self, i: int) -> str | None:
        return self.tokenizer.id_to_token(int(i))

    def encode(self, texts: Sequence[str], max_length: int | None, add_special_tokens: bool = True):
        tok = self.tokenizer
        if max_length:
            tok.enable_truncation(int(max_length))
        else:
            tok.no_truncation()
        encs = tok.encode_batch(list(texts), add_special_tokens=add_special_tokens)
        return [(np.asarray(e.ids, dtype=np.int64), np.asarray(e.special_tokens_mask, dtype=np.int64)) for e in encs]

    def pad(self, rows: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
        """Right padding to the longest row: ``input_ids``, ``attention_mask``, ``special_tokens_mask``."""
        width = max((len(ids) for ids, _ in rows), default=0)
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        special = np.ones((len(rows), width), dtype=np.int64)
        for r, (i, s) in enumerate(rows):
            ids[r, :len(i)], mask[r, :len(i)], special[r, :len(i)] = i, 1, s
        return {"input_ids": ids, "attention_mask": mask, "special_tokens_mask": special}
