"""``python -m pyserini_splare.encode.splare_checkpoint``: assemble a SPLARE checkpoint directory from public
parts (a backbone, a residual SAE, optionally a LoRA adapter), written by
:func:`pyserini_splare.encode.splare.write_checkpoint` (docs/splare-checkpoint.md)."""
