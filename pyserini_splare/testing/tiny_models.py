"""Tiny random Hugging Face models with tokenizers trained on the fly, for tests and benchmarks offline.

Each builder writes a folder that ``from_pretrained`` (and this toolkit's loaders) read like a real
checkpoint: random weights from a config (seeded), and a tokenizer trained on the given texts so
that every word of them is one token. They measure code paths and speed, never effectiveness.

    from pyserini_splare.testing.tiny_models import qwen3_embedder
    qwen3_embedder("/tmp/qwen3", ["cats purr", "dogs bark"])   # then: --encoder qwen3-embed:/tmp/qwen3
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

# The Qwen3-Embedding query prompt: trained into the word-level vocabulary so that no prompt word is <unk>.
_QWEN3_EMBED_PROMPT = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:x"
_QWEN3_CHAT_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _word_level(texts: Iterable[str], special: list[str], unk: str):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.WordLevel(unk_token=unk))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.train_from_iterator(list(texts), trainers.WordLevelTrainer(special_tokens=special))
    return tok


def qwen3_embedder(out: str | Path, texts: Iterable[str], *, hidden: int = 32, layers: int = 2, heads: int = 4,
                   kv_heads: int = 2, head_dim: int = 8, intermediate: int | None = None,
                   max_positions: int = 128, seed: int = 0) -> Path:
    """A Qwen3-shaped ``Qwen3Model`` (what ``qwen3-embed:`` loads) with a word-level tokenizer over ``texts``
    plus the query prompt; ``<|endoftext|>`` is both EOS and padding, as in Qwen3-Embedding."""
    import torch
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3Model

    out = Path(out)
    tok = _word_level([*texts, _QWEN3_EMBED_PROMPT], ["<unk>", "<|endoftext|>"], "<unk>")
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<|endoftext|>",
                            pad_token="<|endoftext|>").save_pretrained(out)
    torch.manual_seed(seed)
    Qwen3Model(Qwen3Config(vocab_size=tok.get_vocab_size(), hidden_size=hidden,
                           intermediate_size=intermediate or 2 * hidden, num_hidden_layers=layers,
                           num_attention_heads=heads, num_key_value_heads=kv_heads, head_dim=head_dim,
                           max_position_embeddings=max_positions)).save_pretrained(out)
    return out


def qwen3_reranker(out: str | Path, texts: Iterable[str], *, vocab_size: int = 600, hidden: int = 32,
                   layers: int = 2, heads: int = 4, kv_heads: int = 2, head_dim: int = 8,
                   intermediate: int | None = None, max_positions: int = 1024, seed: int = 0) -> Path:
    """A Qwen3-shaped causal LM (what the Qwen3-Reranker loader reads) with a byte-level BPE tokenizer
    trained on ``texts``, holding the chat special tokens and single tokens "yes" and "no" like the
    real Qwen3 vocabulary (the reranker's score is P(yes) against P(no) at the last position)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    out = Path(out)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(["yes"] * 50 + ["no"] * 50 + list(texts), trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=_QWEN3_CHAT_SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|endoftext|>", eos_token="<|im_end|>")
    fast.save_pretrained(out)
    cfg = Qwen3Config(vocab_size=len(fast), hidden_size=hidden, intermediate_size=intermediate or 2 * hidden,
                      num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                      head_dim=head_dim, max_position_embeddings=max_positions, pad_token_id=fast.pad_token_id,
                      tie_word_embeddings=False)
    torch.manual_seed(seed)
    Qwen3ForCausalLM(cfg).save_pretrained(out)
    return out


def bert_mlm(out: str | Path, texts: Iterable[str], *, hidden: int = 32, layers: int = 1, heads: int = 2,
             intermediate: int = 64, seed: int = 0) -> Path:
    """A BERT masked LM (what ``splade:`` loads) with a word-level tokenizer over ``texts`` that adds
    ``[CLS] ... [SEP]`` like BERT's."""
    import torch
    from tokenizers import processors
    from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

    out = Path(out)
    tok = _word_level(texts, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], "[UNK]")
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[
        ("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                            sep_token="[SEP]", mask_token="[MASK]").save_pretrained(out)
    torch.manual_seed(seed)
    BertForMaskedLM(BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=hidden, num_hidden_layers=layers,
                               num_attention_heads=heads, intermediate_size=intermediate)).save_pretrained(out)
    return out
