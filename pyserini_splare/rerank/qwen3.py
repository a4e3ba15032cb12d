"""Qwen3-Reranker, pointwise (Zhang et al., "Qwen3 Embedding: Advancing Text Embedding and Reranking
Through Foundation Models", 2025), as used for RUN3/RUN4 of the SPLARE WSDM Cup 2026 system.

``score = softmax([logit("no"), logit("yes")])[1]`` at the next token after the model card's chat prompt
(docs/rerank.md shows it). Only the document's tail is cut to fit ``max_length``, so the instruction and query
always reach the model; batches are left-padded, so every row's last position predicts the answer.
"""

from __future__ import annotations

from typing import Sequence

from .._errors import UsageError

SYSTEM_PROMPT = ('Judge whether the Document meets the requirements based on the Query and the Instruct provided. '
                 'Note that the answer can only be "yes" or "no".')
PREFIX = f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n"
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
# The model card's default task instruction.
DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
DTYPES = ("auto", "bf16", "fp16", "fp32")  # the CLI's choices; names resolved by encode.batching's table


def user_head(query: str, instruction: str | None = None) -> str:
    """The user turn up to and including ``<Document>:``; the document follows as ``" " + doc``."""
    return f"<Instruct>: {instruction or DEFAULT_INSTRUCTION}\n<Query>: {query}\n<Document>:"


def format_prompt(query: str, document: str, instruction: str | None = None) -> str:
    """The full prompt as one string (what the model sees when nothing is truncated)."""
    return f"{PREFIX}{user_head(query, instruction)} {document}{SUFFIX}"


class Qwen3Reranker:
    """Score (query, document) pairs with a Qwen3-Reranker checkpoint (any size) or a compatible model.

    ``dtype`` "auto" is bf16 on CUDA and fp32 on CPU. ``trust_remote_code`` is off unless asked: the
    Qwen3 architecture is part of transformers.
    """

    def __init__(self, model: str, *, device: str = "cpu", dtype: str = "auto", max_length: int = 2048,
                 instruction: str | None = None, trust_remote_code: bool = False):
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ..encode.batching import torch_dtype as resolve_dtype

        self.device = torch.device(device)
        if dtype == "auto":
            dtype = "bf16" if self.device.type == "cuda" else "fp32"
        self.dtype_name = dtype
        torch_dtype = resolve_dtype(dtype)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
            self.model = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype,
                                                              trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as e:
            raise UsageError(f"cannot load reranker {model!r}: {str(e).strip().splitlines()[0]}") from None
        self.model.to(self.device).eval()
        self.instruction = instruction or DEFAULT_INSTRUCTION
        ids = {}
        for word in ("yes", "no"):
            i = self.tokenizer.convert_tokens_to_ids(word)
            if i is None or i == self.tokenizer.unk_token_id:
                raise UsageError(f"reranker {model!r}: the tokenizer has no single token {word!r} (not a Qwen3-Reranker?)")
            ids[word] = int(i)
        self.yes_id, self.no_id = ids["yes"], ids["no"]
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id
        self.prefix_ids = self._tok(PREFIX)
        self.suffix_ids = self._tok(SUFFIX)
        if max_length <= len(self.prefix_ids) + len(self.suffix_ids):
            raise ValueError(f"max_length {max_length} leaves no room for the prompt "
                             f"({len(self.prefix_ids) + len(self.suffix_ids)} template tokens)")
        self.max_length = int(max_length)
        self.spec = {"model": model, "dtype": dtype, "max_length": self.max_length, "instruction": self.instruction}

    def _tok(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def pair_ids(self, query: str, document: str, query_ids: list[int] | None = None) -> list[int]:
        """Token ids of one prompt, truncating only the document's tail to fit ``max_length``."""
        head = query_ids if query_ids is not None else self._tok(user_head(query, self.instruction))
        budget = self.max_length - len(self.prefix_ids) - len(self.suffix_ids) - len(head)
        if budget < 1:
            raise UsageError(f"query {query[:40]!r}... leaves no room for a document within --max-length {self.max_length}")
        doc = self._tok(" " + document)[:budget]
        return self.prefix_ids + head + doc + self.suffix_ids

    def score_ids(self, batch: Sequence[list[int]]) -> list[float]:
        """P(yes) for each prompt of a batch (left-padded to the longest)."""
        import torch

        width = max(len(x) for x in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, x in enumerate(batch):
            ids[r, width - len(x):] = torch.tensor(x, dtype=torch.long)
            mask[r, width - len(x):] = 1
        try:
            with torch.inference_mode():
                # logits_to_keep=1: only the last position's logits (the LM head over all positions
                # would cost 2048 x 151k x 4 B = 1.2 GB per 2048-token prompt for nothing)
                logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                    logits_to_keep=1).logits[:, -1, :]
        except torch.cuda.OutOfMemoryError:
            raise UsageError(f"out of GPU memory on a batch of {len(batch)} x {width} tokens: lower --batch-size "
                             f"or --max-length") from None
        pair = torch.stack([logits[:, self.no_id], logits[:, self.yes_id]], dim=1).float()
        return torch.softmax(pair, dim=1)[:, 1].tolist()

    def score(self, query: str, documents: Sequence[str], batch_size: int = 8) -> list[float]:
        """Scores of ``documents`` for ``query``; batches are formed from length-sorted prompts."""
        from ..encode.batching import length_sorted_batches

        head = self._tok(user_head(query, self.instruction))
        prompts = [self.pair_ids(query, d, head) for d in documents]
        scores = [0.0] * len(prompts)
        for idx in length_sorted_batches([len(p) for p in prompts], batch_size):
            for i, v in zip(idx, self.score_ids([prompts[i] for i in idx])):
                scores[i] = v
        return scores
