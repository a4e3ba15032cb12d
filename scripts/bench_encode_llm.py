"""Benchmark SPLARE-style encoding on CPU with a random Llama trunk and a random JumpReLU SAE.

Measures tokens/s for: the trunk cut after block L (what SPLARE runs), the full-depth trunk (what a
final-layer encoder would run), and full SPLARE encoding (cut trunk + SAE + pooling, via SplareEncoder
with length-sorted micro-batches). Prints a table and ratios; nothing is asserted. Everything is built
offline in a temporary directory (random weights: speed only, the vectors are meaningless).

Example:
  python scripts/bench_encode_llm.py --hidden 512 --blocks 8 --layer 3 --latents 16384 --docs 64 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WORDS = ["retrieval", "sparse", "latent", "concept", "document", "query", "language", "model", "encoder", "token", "vector", "index", "search", "rank", "score", "fusion", "dense", "lexical", "multilingual", "persian", "russian", "chinese", "news", "corpus"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__[__doc__.index("Example:"):],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--blocks", type=int, default=8, help="depth of the random model")
    p.add_argument("--layer", type=int, default=3, help="cut after this 0-indexed block")
    p.add_argument("--latents", type=int, default=16384, help="SAE width")
    p.add_argument("--docs", type=int, default=64)
    p.add_argument("--doc-words", type=int, default=200, help="words per document (lengths vary 25-100%%)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def build(tmp: Path, args):
    import torch
    from safetensors.torch import save_file
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator([" ".join(WORDS)] * 10, trainers.BpeTrainer(
        vocab_size=500, special_tokens=["<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>")
    cfg = LlamaConfig(vocab_size=len(hf_tok), hidden_size=args.hidden, intermediate_size=args.hidden * 3,
                      num_hidden_layers=args.blocks, num_attention_heads=max(1, args.hidden // 64),
                      num_key_value_heads=max(1, args.hidden // 256), max_position_embeddings=4096)
    torch.manual_seed(args.seed)
    model_dir = tmp / "llm"
    LlamaForCausalLM(cfg).save_pretrained(model_dir)
    hf_tok.save_pretrained(model_dir)
    g = torch.Generator().manual_seed(args.seed)
    save_file({"W_enc": torch.randn(args.hidden, args.latents, generator=g) / args.hidden ** 0.5,
               "b_enc": torch.zeros(args.latents), "threshold": torch.full((args.latents,), 0.05)},
              str(tmp / "sae.safetensors"), metadata={"activation": "jumprelu"})
    sae_dir = tmp / "sae.safetensors"
    ckpt = tmp / "ckpt"
    ckpt.mkdir()
    (ckpt / "splare_config.json").write_text(json.dumps({
        "backbone": str(model_dir), "layer": args.layer, "sae": {"path": str(sae_dir)}, "attention": "bidirectional",
        "max_length_doc": 1024}))
    return model_dir, ckpt


def main(argv=None):
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from pyserini_splare.encode.backbone import load_trunk
    from pyserini_splare.encode.splare import load_splare, sorted_batches

    rng = random.Random(args.seed)
    docs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(args.doc_words // 4, args.doc_words)))
            for _ in range(args.docs)]
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, ckpt = build(Path(tmp), args)
        enc = load_splare(str(ckpt), batch_size=args.batch_size)
        full = load_trunk(str(model_dir), layer=None, attention="bidirectional")
        lengths = [len(x) for x in enc.trunk.tokenizer(docs, truncation=True, max_length=1024)["input_ids"]]
        n_tokens = sum(lengths)

        def trunk_only(trunk):
            for idx in sorted_batches(lengths, args.batch_size):
                b = trunk.tokenize([docs[i] for i in idx], 1024)
                with torch.inference_mode():
                    trunk.hidden(b["input_ids"], b["attention_mask"])

        rows = []
        for name, fn in ((f"trunk cut after block {args.layer}", lambda: trunk_only(enc.trunk)),
                         (f"trunk full depth ({args.blocks} blocks)", lambda: trunk_only(full)),
                         (f"SPLARE encode (cut + SAE {args.latents} + pool)", lambda: enc.encode(docs, "doc"))):
            fn()  # warm-up
            t = time.perf_counter()
            fn()
            dt = time.perf_counter() - t
            rows.append((name, dt, n_tokens / dt))
    print(f"# {args.docs} docs, {n_tokens} tokens, hidden {args.hidden}, batch {args.batch_size}, "
          f"threads {args.threads}, torch {torch.__version__}, load avg {os.getloadavg()[0]:.1f}")
    print(f"{'what':<42}{'seconds':>10}{'tokens/s':>12}")
    for name, dt, tps in rows:
        print(f"{name:<42}{dt:>10.2f}{tps:>12.0f}")
    print(f"cut/full speed-up: {rows[0][2] / rows[1][2]:.2f}x (ideal {args.blocks / (args.layer + 1):.2f}x); "
          f"SAE+pooling share of SPLARE time: {1 - rows[0][1] / rows[2][1]:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
