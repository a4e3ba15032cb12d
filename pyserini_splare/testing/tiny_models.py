"""Tiny random Hugging Face models with tokenizers trained on the fly, for tests and benchmarks offline.

Each builder writes a folder ``from_pretrained`` reads like a real checkpoint (seeded random weights, a
tokenizer in which every word of the given texts is one token); they measure code paths, never effectiveness.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from .._errors import cli_main, run

# The Qwen3-Embedding query prompt: trained into the word-level vocabulary so that no prompt word is <unk>.
_QWEN3_EMBED_PROMPT = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:x"
_QWEN3_CHAT_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _word_level(texts: Iterable[str], special: list[str], unk: str, template: str | None = None,
                lowercase: bool = False):
    """A word-level tokenizer over ``texts`` (``lowercase``: lowercased, words and punctuation split apart) with
    ``template``'s first and last special tokens around each text, e.g. ``"<s> $A </s>"``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.WordLevel(unk_token=unk))
    if lowercase:
        tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace() if lowercase else pre_tokenizers.WhitespaceSplit()
    tok.train_from_iterator(list(texts), trainers.WordLevelTrainer(special_tokens=special, vocab_size=10**7))
    if template is not None:
        first, last = template.split()[0], template.split()[-1]
        tok.post_processor = processors.TemplateProcessing(
            single=template, special_tokens=[(first, tok.token_to_id(first)), (last, tok.token_to_id(last))])
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
    from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

    out = Path(out)
    tok = _word_level(texts, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], "[UNK]", "[CLS] $A [SEP]")
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                            sep_token="[SEP]", mask_token="[MASK]").save_pretrained(out)
    torch.manual_seed(seed)
    BertForMaskedLM(BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=hidden, num_hidden_layers=layers,
                               num_attention_heads=heads, intermediate_size=intermediate)).save_pretrained(out)
    return out


def bge_m3(out: str | Path, texts: Iterable[str], *, hidden: int = 32, layers: int = 2, heads: int = 2,
           intermediate: int = 64, max_length: int = 512, seed: int = 0) -> Path:
    """A folder laid out as ``BAAI/bge-m3`` (what ``bge-m3:`` loads): a random XLM-R trunk, a lowercasing
    word-level tokenizer over ``texts`` with XLM-R's special tokens (``<s>`` 0, ``<pad>`` 1, ``</s>`` 2,
    ``<unk>`` 3), ``sparse_linear.pt`` (hidden -> 1, a positive bias so that nearly every token weighs
    something) and ``colbert_linear.pt`` (FlagEmbedding reads the sparse head only when both are there). Trunk
    weights are drawn wider than XLM-R's init (N(0, 0.3)) so that the random token weights spread."""
    import torch
    from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel

    out = Path(out)
    tok = _word_level(texts, ["<s>", "<pad>", "</s>", "<unk>"], "<unk>", "<s> $A </s>", lowercase=True)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>", cls_token="<s>", sep_token="</s>")
    fast.model_max_length = max_length
    fast.save_pretrained(out)
    torch.manual_seed(seed)
    # XLM-R numbers positions from pad_token_id + 1: max_length tokens need max_length + 2 positions
    cfg = XLMRobertaConfig(vocab_size=tok.get_vocab_size(), hidden_size=hidden, num_hidden_layers=layers,
                           num_attention_heads=heads, intermediate_size=intermediate,
                           max_position_embeddings=max_length + 2, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                           architectures=["XLMRobertaModel"])
    model = XLMRobertaModel(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.normal_(0, 0.3)
    model.save_pretrained(out)
    sparse = torch.nn.Linear(hidden, 1)
    with torch.no_grad():
        # w.h ~ N(0, 0.1 sqrt(hidden)) over layer-normed states, bias 1: ~4 % of tokens ReLU to 0 at hidden 32.
        # (bias 0.1 and N(0, 0.5) left 114 of CACM's documents and some 2-word topics with no weight at all:
        # search refuses an empty query vector.)
        sparse.weight.normal_(0, 0.1)
        sparse.bias.fill_(1.0)
    torch.save(sparse.state_dict(), out / "sparse_linear.pt")
    torch.save(torch.nn.Linear(hidden, hidden).state_dict(), out / "colbert_linear.pt")
    return out


def opensearch(out: str | Path, texts: Iterable[str], *, hidden: int = 32, layers: int = 1, heads: int = 2,
               intermediate: int = 64, max_length: int = 512, seed: int = 0) -> Path:
    """A folder laid out as OpenSearch's inference-free models (what ``opensearch:`` loads): a random BERT
    masked LM for documents, a lowercasing word-level tokenizer over ``texts`` with BERT's special tokens,
    and ``idf.json`` with each word's smoothed IDF over ``texts``, ``ln(1 + N / df)`` (OpenSearch ships
    IDF-derived weights too; here they are real statistics, so queries rank by IDF-weighted term overlap
    with the random document weights). The output bias is shifted so that documents keep ~150 terms."""
    import json
    import math

    import torch
    from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

    out = Path(out)
    texts = list(texts)
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = _word_level(texts, special, "[UNK]", "[CLS] $A [SEP]", lowercase=True)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")
    fast.model_max_length = max_length
    fast.save_pretrained(out)
    torch.manual_seed(seed)
    model = BertForMaskedLM(BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=hidden, num_hidden_layers=layers,
                                       num_attention_heads=heads, intermediate_size=intermediate,
                                       max_position_embeddings=max_length)).eval()
    # A random MLM's logits are centred on 0, so SPLADE pooling (max over tokens, then ReLU) keeps about half
    # the vocabulary per document (17,807 of 17,888 terms on CACM: 57M postings). Shift the output bias so
    # that the first texts keep `doc_terms` terms each on average, as a trained SPLADE model keeps ~100-200.
    doc_terms = min(150, max(1, tok.get_vocab_size() // 10))  # a tenth of a small test vocabulary
    sample = texts[:100]
    with torch.no_grad():
        feats = fast(sample, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        logits = model(**feats).logits.masked_fill(~feats["attention_mask"].bool()[..., None], float("-inf"))
        maxima = logits.amax(dim=1).flatten().sort(descending=True).values
        model.cls.predictions.decoder.bias -= maxima[len(sample) * doc_terms]
    model.save_pretrained(out)
    df: dict[str, int] = {}
    for t in texts:
        for w in set(tok.encode(t, add_special_tokens=False).tokens):
            df[w] = df.get(w, 0) + 1
    idf = {w: math.log1p(len(texts) / n) for w, n in sorted(df.items()) if w not in special}
    (out / "idf.json").write_text(json.dumps(idf, indent=0) + "\n", encoding="utf-8")
    return out


BUILDERS = {"bge-m3": bge_m3, "opensearch": opensearch}


@cli_main
def main(argv=None) -> int:
    """``python -m pyserini_splare.testing.tiny_models --kind KIND --corpus SPEC --output DIR``."""
    import argparse

    from .._argtypes import ArgumentParser
    from .._errors import UsageError
    from .._outputs import atomic_dir, check_output_dir
    from ..corpus import open_corpus

    p = ArgumentParser(
        prog="python -m pyserini_splare.testing.tiny_models",
        description="Write a tiny random checkpoint in a public model's layout, its tokenizer trained on a corpus "
                    "(offline; for code paths and the local 2CR matrix, never for effectiveness).",
        epilog="examples:\n"
               "  python -m pyserini_splare.testing.tiny_models --kind bge-m3 --corpus $DATA/cacm/cacm.tar.gz "
               "--output models/bge-m3-tiny\n"
               "  python -m pyserini_splare.testing.tiny_models --kind opensearch --corpus corpus.jsonl "
               "--output models/os-tiny --seed 1",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kind", required=True, choices=sorted(BUILDERS), help="the layout to write")
    p.add_argument("--corpus", required=True, help="the texts the tokenizer (and idf.json) are built from: "
                                                   "a corpus spec as encode --corpus takes")
    p.add_argument("--output", required=True, help="the folder to write (must not exist)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output folder")
    args = p.parse_args(argv)
    out = check_output_dir(args.output, overwrite=args.overwrite)
    texts = [d.text for d in open_corpus(args.corpus)]
    if not texts:
        raise UsageError(f"{args.corpus}: no documents")
    with atomic_dir(out, overwrite=args.overwrite) as tmp:
        BUILDERS[args.kind](tmp, texts, seed=args.seed)
    print(f"wrote {out}: a tiny random {args.kind} checkpoint, tokenizer over {len(texts):,} texts")
    return 0


if __name__ == "__main__":
    run(main)
