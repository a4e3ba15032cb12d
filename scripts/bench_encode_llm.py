"""Benchmark SPLARE-style encoding on CPU with a random Llama trunk and a random JumpReLU SAE.

Measures tokens/s for: the trunk cut after block L (what SPLARE runs), the full-depth trunk (what a
final-layer encoder would run), and full SPLARE encoding (cut trunk + SAE + pooling, via the SPLARE SparseModel
with length-sorted micro-batches). Prints a table and ratios; nothing is asserted. Everything is built
offline in a temporary directory (random weights: speed only, the vectors are meaningless).

On a GPU, ``--preset llama-8b`` builds a Llama-3.1-8B-shaped trunk (hidden 4,096, MLP 14,336, 32 heads /
8 KV heads, 32 blocks) cut after block 26 with a 131,072-latent SAE (the SPLARE-8B shape), in bf16, and
``--roofline`` measures the machine's bf16 matmul TFLOP/s to compare tokens/s against: the roofline is
peak TFLOP/s / (FLOPs per token = 2 x (cut-trunk weights + SAE encoder weights)), attention's
sequence-dependent FLOPs left out (a lower bound of the work, so the ratio is an upper bound).

Example:
  python scripts/bench_encode_llm.py --hidden 512 --blocks 8 --layer 3 --latents 16384 --docs 64 --threads 2
  python scripts/bench_encode_llm.py --preset llama-8b --device cuda --dtype bf16 --docs 256 --batch-size 16 --roofline
"""

from __future__ import annotations

import argparse
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
    p.add_argument("--preset", choices=["llama-8b"], default=None,
                   help="llama-8b: hidden 4096, 32 blocks, cut after 26, 131,072 latents (overrides the shape flags)")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    p.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default="fp32")
    p.add_argument("--roofline", action="store_true", help="also measure the dense matmul TFLOP/s in --dtype")
    p.add_argument("--no-full", action="store_true", help="skip the full-depth trunk row (memory)")
    a = p.parse_args(argv)
    if a.preset == "llama-8b":
        a.hidden, a.intermediate, a.heads, a.kv_heads = 4096, 14336, 32, 8
        a.blocks, a.layer, a.latents = 32, 26, 131072
    else:
        a.intermediate, a.heads, a.kv_heads = a.hidden * 3, max(1, a.hidden // 64), max(1, a.hidden // 256)
    return a


def matmul_tflops(device: str, dtype, n: int = 8192, reps: int = 20) -> float:
    """Dense n x n x n matmul throughput: the practical roofline for a trunk made of GEMMs."""
    import torch

    if device == "cpu":
        n, reps = 2048, 5
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - t) / 1e12


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


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

    from pyserini_splare.encode.splare import write_checkpoint

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator([" ".join(WORDS)] * 10, trainers.BpeTrainer(
        vocab_size=500, special_tokens=["<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>")
    cfg = LlamaConfig(vocab_size=len(hf_tok), hidden_size=args.hidden, intermediate_size=args.intermediate,
                      num_hidden_layers=args.blocks, num_attention_heads=args.heads,
                      num_key_value_heads=args.kv_heads, max_position_embeddings=4096)
    torch.manual_seed(args.seed)
    model_dir = tmp / "llm"
    # built in the benchmark dtype: an 8B-shaped model in fp32 would need 32 GB of host memory
    tdtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    # initialised where it will run and directly in the benchmark dtype (an 8B-shaped model initialised in
    # fp32 on the CPU takes minutes); blocks past the cut are never run, so --no-full leaves them out
    if getattr(args, "no_full", False):
        cfg.num_hidden_layers = args.layer + 1
    default = torch.get_default_dtype()
    torch.set_default_dtype(tdtype)
    try:
        with torch.device(args.device):
            model = LlamaForCausalLM(cfg)
    finally:
        torch.set_default_dtype(default)
    model.save_pretrained(model_dir)
    del model
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()  # a benchmark child process (bench_train.py) needs the memory back
    hf_tok.save_pretrained(model_dir)
    g = torch.Generator().manual_seed(args.seed)
    save_file({"W_enc": torch.randn(args.hidden, args.latents, generator=g) / args.hidden ** 0.5,
               "b_enc": torch.zeros(args.latents), "threshold": torch.full((args.latents,), 0.05)},
              str(tmp / "sae.safetensors"), metadata={"activation": "jumprelu"})
    sae_dir = tmp / "sae.safetensors"
    ckpt = tmp / "ckpt"
    write_checkpoint(ckpt, {"backbone": str(model_dir), "layer": args.layer, "sae": {"path": str(sae_dir)},
                            "attention": "bidirectional", "max_length_doc": getattr(args, "max_length", None) or 1024})
    return model_dir, ckpt


def main(argv=None):
    args = parse_args(argv)
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from pyserini_splare.encode.batching import length_sorted_batches
    from pyserini_splare.encode.modules.trunk import load_trunk
    from pyserini_splare.encode.splare import load_splare

    rng = random.Random(args.seed)
    docs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(args.doc_words // 4, args.doc_words)))
            for _ in range(args.docs)]
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, ckpt = build(Path(tmp), args)
        enc = load_splare(str(ckpt), batch_size=args.batch_size, device=args.device, dtype=args.dtype)
        full = None if args.no_full else load_trunk(str(model_dir), layer=None, attention="bidirectional",
                                                    device=args.device, dtype=args.dtype)
        lengths = [len(x) for x in enc.trunk.tokenizer(docs, truncation=True, max_length=1024)["input_ids"]]
        n_tokens = sum(lengths)

        def trunk_only(trunk):
            for idx in length_sorted_batches(lengths, args.batch_size):
                b = trunk.tokenizer([docs[i] for i in idx], padding=True, truncation=True, max_length=1024,
                                    return_tensors="pt")
                with torch.inference_mode():
                    trunk(b["input_ids"].to(trunk.device), b["attention_mask"].to(trunk.device))

        cases = [(f"trunk cut after block {args.layer}", lambda: trunk_only(enc.trunk))]
        if full is not None:
            cases.append((f"trunk full depth ({args.blocks} blocks)", lambda: trunk_only(full)))
        sae_name = "TF32" if args.device.startswith("cuda") and args.dtype != "fp32" else "fp32"
        cases.append((f"SPLARE encode (cut + SAE {args.latents} {sae_name} + pool)", lambda: enc.encode(docs, "doc")))
        exact_sae = None
        if sae_name == "TF32":  # the same with the SAE's product in exact fp32 (SAE.tf32 = False): cost and drift

            def exact_sae():
                enc.head.tf32 = False
                try:
                    return enc.encode(docs, "doc")
                finally:
                    enc.head.tf32 = None

            cases.append((f"SPLARE encode (cut + SAE {args.latents} exact fp32 + pool)", exact_sae))
        main = len(cases) - (2 if exact_sae is not None else 1)  # the default SPLARE row
        rows = []
        for name, fn in cases:
            fn()  # warm-up
            sync(args.device)
            t = time.perf_counter()
            fn()
            sync(args.device)
            dt = time.perf_counter() - t
            rows.append((name, dt, n_tokens / dt))
        if exact_sae is not None:
            fast, exact = enc.encode(docs, "doc"), exact_sae()
            same = [len(set(a.ids.tolist()) & set(b.ids.tolist())) / max(1, len(set(b.ids.tolist())))
                    for a, b in zip(fast, exact)]
            rel = [float(np.linalg.norm(a.to_dense(args.latents) - b.to_dense(args.latents))
                         / max(1e-12, np.linalg.norm(b.to_dense(args.latents)))) for a, b in zip(fast, exact)]
            drift = (f"TF32 vs exact fp32 SAE, {len(docs)} docs: features of the exact run kept "
                     f"{sum(same) / len(same):.4f} (mean), relative L2 difference {max(rel):.2e} (max)")
        # weights the cut trunk multiplies per token (embeddings are a lookup) + the SAE encoder
        cut_params = sum(p.numel() for n, p in enc.trunk.model.named_parameters() if "embed" not in n)
        flops_per_token = 2 * (cut_params + args.hidden * args.latents)
        peak = matmul_tflops(args.device, next(enc.trunk.model.parameters()).dtype) if args.roofline else None
    print(f"# {args.docs} docs, {n_tokens} tokens, hidden {args.hidden}, batch {args.batch_size}, "
          f"device {args.device}, dtype {args.dtype}, threads {args.threads}, torch {torch.__version__}, "
          f"load avg {os.getloadavg()[0]:.1f}")
    print(f"{'what':<48}{'seconds':>10}{'tokens/s':>12}")
    for name, dt, tps in rows:
        print(f"{name:<48}{dt:>10.2f}{tps:>12.0f}")
    if full is not None:
        print(f"cut/full speed-up: {rows[0][2] / rows[1][2]:.2f}x (ideal {args.blocks / (args.layer + 1):.2f}x)")
    print(f"SAE+pooling share of SPLARE time: {1 - rows[0][1] / rows[main][1]:.0%}")
    if exact_sae is not None:
        print(drift)
    if peak is not None:
        roof = peak * 1e12 / flops_per_token
        print(f"matmul roofline: {peak:.1f} TFLOP/s ({args.dtype}); {flops_per_token / 1e9:.2f} GFLOP/token "
              f"(cut trunk {cut_params / 1e9:.2f}B weights + SAE) -> {roof:,.0f} tokens/s; "
              f"SPLARE encode reaches {rows[main][2] / roof:.0%} of it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
