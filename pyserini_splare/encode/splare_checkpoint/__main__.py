"""Assemble a SPLARE checkpoint directory (docs/splare-checkpoint.md) from public parts.

No public SPLARE checkpoint exists. The zero-shot variant composes a public LLM and a public residual SAE;
a LoRA adapter trained on the cut trunk (with the SAE frozen) makes SPLARE-7B. This command never
downloads: the backbone may be a hub id (recorded as is, resolved by transformers when the checkpoint is
loaded) or a local path (then checked now); the SAE is a local path or an hf:// reference recorded for
the first load; the adapter is a local path.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..._argtypes import ArgumentParser, non_negative_int, positive_int
from ..._errors import UsageError, cli_main, run
from ..._outputs import atomic_dir, check_output_dir

EXAMPLES = """\
examples:
  # zero-shot SPLARE from Llama-3.1-8B + Llama Scope L26R-32x (131,072 latents, JumpReLU), local SAE
  python -m pyserini_splare.encode.splare_checkpoint --backbone meta-llama/Llama-3.1-8B \\
      --sae ~/hf/Llama3_1-8B-Base-LXR-32x/Llama3_1-8B-Base-L26R-32x --output ckpt/splare-zs-l26 --exclude-bos

  # the same with the SAE fetched on first load (only its subfolder) instead of now
  python -m pyserini_splare.encode.splare_checkpoint --backbone meta-llama/Llama-3.1-8B --layer 26 \\
      --sae hf://fnlp/Llama3_1-8B-Base-LXR-32x/Llama3_1-8B-Base-L26R-32x --output ckpt/splare-zs-l26

  # with a trained adapter (bidirectional attention by default then), copied into the checkpoint
  python -m pyserini_splare.encode.splare_checkpoint --backbone meta-llama/Llama-3.1-8B --sae SAE_DIR \\
      --lora adapters/splare-7b --copy-lora --output ckpt/splare-7b

  # then encode with it
  python -m pyserini_splare.encode --encoder splare:ckpt/splare-zs-l26 --corpus C --output vectors/
"""


def build_parser() -> ArgumentParser:
    from ..batching import DTYPES
    from ..modules.names import ACTIVATIONS, ATTENTION_MODES, SAE_FORMATS

    p = ArgumentParser(prog="python -m pyserini_splare.encode.splare_checkpoint",
                       description=__doc__ + "\nWrites OUTPUT/splare_config.json (and copies parts on request).",
                       epilog=EXAMPLES)
    p.add_argument("--backbone", required=True, help="HF hub id or local path of the causal LLM")
    p.add_argument("--sae", required=True, help="local SAE directory or .safetensors file, or hf://OWNER/REPO/SUBFOLDER "
                   "(recorded, fetched when the checkpoint is first loaded)")
    p.add_argument("--sae-format", default="auto", choices=SAE_FORMATS, help="default: auto (from the SAE's files)")
    p.add_argument("--activation", choices=ACTIVATIONS, help="override the SAE's activation")
    p.add_argument("--k", type=positive_int, help="TopK's k (override)")
    p.add_argument("--layer", type=non_negative_int,
                   help="0-indexed block the SAE reads; default: from the SAE's hook point (blocks.N.hook_resid_post)")
    p.add_argument("--lora", help="local peft adapter directory trained on the cut trunk")
    p.add_argument("--attention", choices=ATTENTION_MODES,
                   help="default: bidirectional with an adapter (as SPLARE-7B was trained), causal without")
    p.add_argument("--max-length-query", type=positive_int, default=512, help="query truncation (default 512)")
    p.add_argument("--max-length-doc", type=positive_int, default=1024, help="document truncation (default 1024)")
    p.add_argument("--dtype", default="bfloat16", choices=sorted(DTYPES), help="trunk dtype on GPU (default bfloat16)")
    p.add_argument("--exclude-bos", action="store_true", help="leave the BOS token out of pooling")
    p.add_argument("--copy-sae", action="store_true", help="copy the SAE into OUTPUT/sae (relocatable checkpoint)")
    p.add_argument("--copy-lora", action="store_true", help="copy the adapter into OUTPUT/lora")
    p.add_argument("--output", required=True, help="checkpoint directory to create")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    return p


def _check_backbone(backbone: str, layer: int, d_model: int | None) -> None:
    """Only a local backbone is checked (a hub id is not fetched: this command stays offline)."""
    if not (Path(backbone) / "config.json").exists():
        return
    from ..modules.trunk import load_config

    cfg = load_config(backbone)
    n = int(cfg.num_hidden_layers)
    if not 0 <= layer < n:
        raise UsageError(f"layer {layer} is beyond the model's depth: {backbone} has {n} blocks")
    if d_model is not None and int(cfg.hidden_size) != d_model:
        raise UsageError(f"SAE d_model {d_model} does not match {backbone}'s hidden size {cfg.hidden_size}")


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    from ..modules.sae import inspect_sae
    from ..splare import CONFIG_FILE, HF_SCHEME, copy_part, write_checkpoint

    check_output_dir(args.output, overwrite=args.overwrite)
    remote = args.sae.startswith(HF_SCHEME)
    if remote:
        # Not fetched now: the layer must be given and shapes are checked when the checkpoint is loaded.
        if args.layer is None:
            raise UsageError(f"an {HF_SCHEME} SAE is not inspected offline: pass --layer")
        if args.copy_sae:
            raise UsageError(f"--copy-sae needs a local SAE, not {args.sae}")
        info = {"format": args.sae_format, "d_model": None, "n_latents": "?", "hook_point_in": None, "layer": None}
    elif not os.path.exists(args.sae):
        raise UsageError(f"SAE {args.sae!r} not found (download it first, or give hf://OWNER/REPO/SUBFOLDER)")
    else:
        info = inspect_sae(args.sae, args.sae_format)
    layer = args.layer if args.layer is not None else info["layer"]
    if layer is None:
        raise UsageError(f"cannot infer the layer from SAE hook point {info['hook_point_in']!r}: pass --layer")
    if info["layer"] is not None and layer != info["layer"]:
        raise UsageError(f"--layer {layer} contradicts the SAE, which reads {info['hook_point_in']}")
    _check_backbone(args.backbone, layer, info["d_model"])
    if args.lora and not (Path(args.lora) / "adapter_config.json").exists():
        raise UsageError(f"LoRA adapter {args.lora!r}: no adapter_config.json there")
    attention = args.attention or ("bidirectional" if args.lora else "causal")
    with atomic_dir(args.output, overwrite=args.overwrite) as tmp:
        sae = copy_part(args.sae, tmp, "sae") if args.copy_sae else args.sae
        lora = copy_part(args.lora, tmp, "lora") if args.lora and args.copy_lora else args.lora
        cfg = write_checkpoint(tmp, {
            "backbone": args.backbone, "layer": layer, "lora": lora, "attention": attention,
            "sae": {"path": sae, "format": info["format"], "activation": args.activation, "k": args.k},
            "max_length_query": args.max_length_query, "max_length_doc": args.max_length_doc, "dtype": args.dtype,
            "exclude_bos": args.exclude_bos})
    print(f"wrote {args.output}/{CONFIG_FILE}: {cfg.backbone} cut after block {layer}, "
          f"SAE {info['format']} {info['d_model']}->{info['n_latents']}, attention {attention}")
    return 0


if __name__ == "__main__":
    run(main)
