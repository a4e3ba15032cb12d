"""The encoder kinds: one table, ``kind -> how it loads, saves, is named by a folder, and trains``.

A spec ``KIND:PATH`` is looked up here, never guessed from a model name; entries name their functions as
lazy ``"module:attribute"`` strings (no torch at import). Fields and how to add a kind: docs/encoders.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


TrainingMode = Literal["full", "lora"]
TRAINING_MODES = ("full", "lora")


@dataclass(frozen=True)
class EncoderKind:
    loader: str
    saver: str | None = None
    describe: str | None = None
    config_file: str | None = None
    training: TrainingMode | None = None

    def __post_init__(self):
        for name in ("loader", "saver", "describe"):
            ref = getattr(self, name)
            if ref is not None and (ref.count(":") != 1 or not all(ref.partition(":")[::2])):
                raise ValueError(f"{name} must be 'module:attribute', got {ref!r}")
        if self.training is not None and self.training not in TRAINING_MODES:
            raise ValueError(f"training must be one of {TRAINING_MODES} or None, got {self.training!r}")


ENCODERS: dict[str, EncoderKind] = {
    # SPLADE (BERT MLM): a Hugging Face masked-LM folder; fully fine-tuned.
    "splade": EncoderKind(loader="pyserini_splare.encode.splade:load_splade",
                          saver="pyserini_splare.encode.splade:save",
                          describe="pyserini_splare.encode.splade:spec", training="full"),
    # SPLADE over an LLM vocabulary (SPLADE-8B); LoRA on the trunk.
    "splade-llm": EncoderKind(loader="pyserini_splare.encode.splade_llm:load_splade_llm",
                              saver="pyserini_splare.encode.splade_llm:save",
                              describe="pyserini_splare.encode.splade_llm:spec",
                              config_file="splade_llm_config.json", training="lora"),
    # SPLARE: trunk cut at a layer -> frozen SAE; LoRA on the trunk, the SAE frozen.
    "splare": EncoderKind(loader="pyserini_splare.encode.splare:load_splare",
                          saver="pyserini_splare.encode.splare:save",
                          describe="pyserini_splare.encode.splare:spec",
                          config_file="splare_config.json", training="lora"),
    # MILCO: the reference checkpoint layout (config.json names it, see specs.py).
    "milco": EncoderKind(loader="pyserini_splare.encode.milco:load_milco",
                         saver="pyserini_splare.encode.milco:save",
                         describe="pyserini_splare.encode.milco:spec"),
    # BGE-M3's sparse view (XLM-R + sparse_linear.pt); a folder holding sparse_linear.pt is one.
    "bge-m3": EncoderKind(loader="pyserini_splare.encode.bge_m3:load_bge_m3",
                          saver="pyserini_splare.encode.bge_m3:save",
                          describe="pyserini_splare.encode.splade:spec", config_file="sparse_linear.pt"),
    # OpenSearch inference-free: documents by the MLM, queries by idf.json (its encoder describes itself).
    "opensearch": EncoderKind(loader="pyserini_splare.encode.opensearch:load_opensearch", config_file="idf.json"),
    # A query/document encoder exported by `python -m pyserini_splare.export` (onnxruntime, no torch).
    "onnx": EncoderKind(loader="pyserini_splare.encode.onnx_encoder:load_onnx", config_file="onnx_encoder.json"),
    # Qwen3-Embedding (dense): its encoder class describes itself; not saved, not trained here.
    "qwen3-embed": EncoderKind(loader="pyserini_splare.encode.dense:load_qwen3_embed"),
}


def kind_names() -> str:
    return ", ".join(sorted(ENCODERS))


def trainable() -> dict[str, TrainingMode]:
    """Kinds the trainer can train -> their default mode (``train --tune auto``)."""
    return {name: k.training for name, k in ENCODERS.items() if k.training is not None}
