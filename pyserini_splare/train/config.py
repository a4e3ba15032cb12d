"""Training settings: one dataclass feeds the CLI flags (through ``HfArgumentParser``, :mod:`.arguments`), the
recipes and the saved ``train_config.json``.

Precedence: the dataclass defaults (the SPLARE recipe, see docs/training.md) < a recipe
(``--recipe NAME``: ``recipes/NAME.yaml`` shipped in the package, or a YAML file) < explicit flags.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .._errors import UsageError
from .arguments import setting as _f
from .losses import LOSSES

RECIPES_DIR = Path(__file__).with_name("recipes")
TUNE_MODES = ("auto", "full", "lora")
DTYPES = ("bf16", "fp16", "fp32")
# Recipe keys that describe the recipe rather than set a flag.
RECIPE_META = ("description", "kinds")


@dataclass
class TrainConfig:
    encoder: str = _f(None, "encoder SPEC to start from (splade:DIR, splade-llm:DIR, splare:DIR)")
    train_data: str = _f(None, "training JSONL (FlagEmbedding format, see train.data)")
    output: str = _f(None, "output checkpoint directory (an encoder spec of the same kind once done)")
    dev_topics: str | None = _f(None, "dev queries (file or registered name) for periodic evaluation")
    dev_qrels: str | None = _f(None, "dev qrels")
    dev_corpus: str | None = _f(None, "dev corpus (encoded, indexed with the exact backend, searched)")
    dev_every: int = _f(0, "evaluate on the dev set every N steps (0: only before and after training)",
                        check="non-negative")
    dev_metrics: str = _f("RR@10,nDCG@10,R@100", "comma-separated ir_measures names for the dev evaluation")
    recipe: str | None = _f(None, "named recipe (splare-7b, splade-8b, splade-tiny-cpu) or a YAML file")
    loss: str | None = _f(None, f"one of {', '.join(LOSSES)} (default: kl with teacher scores, else infonce)",
                          one_of=tuple(LOSSES))
    temperature: float | None = _f(None, "τ of KL distillation (default 80: Llama Scope; 50 for Gemma Scope) or "
                                         "of InfoNCE (default 1)", check="positive")
    flops_query: float = _f(1e-4, "λ_q, FLOPS regularization weight on queries", check="non-negative")
    flops_doc: float = _f(1e-4, "λ_d, FLOPS regularization weight on documents", check="non-negative")
    flops_warmup: float = _f(1 / 3, "fraction of the steps over which λ rises (quadratically) from 0",
                             check="fraction")
    tune: str = _f("auto", f"{'|'.join(TUNE_MODES)}: full fine-tuning or a LoRA adapter (auto: by kind)",
                   one_of=TUNE_MODES)
    lora_r: int = _f(64, "LoRA rank", check="positive")
    lora_alpha: int = _f(128, "LoRA alpha", check="positive")
    lora_targets: list[str] | None = _f(None, "LoRA target modules (default: the attention projections)")
    lr: float = _f(5e-5, "peak learning rate (AdamW, linear decay)", check="positive")
    warmup_ratio: float = _f(0.01, "fraction of the steps of linear LR warm-up", check="fraction")
    batch_size: int = _f(16, "queries per device per step (each with 1 positive + NEGATIVES negatives)",
                         check="positive")
    grad_accum: int = _f(1, "gradient accumulation steps", check="positive")
    negatives: int = _f(8, "hard negatives per query", check="non-negative")
    max_length: int = _f(512, "max tokens of queries and documents in training", check="positive")
    topk_query: int = _f(0, "Top-K pooling in training: each query vector keeps its K largest weights (the SPLARE "
                            "paper's pooled models: 40); recorded in OUTPUT, so encode/search prune the same; "
                            "0: off (default)", check="non-negative")
    topk_doc: int = _f(0, "Top-K pooling in training for documents (pooled models: 400); 0: off (default)",
                       check="non-negative")
    epochs: float = _f(1.0, "epochs over the training data", check="positive")
    max_steps: int = _f(-1, "stop after N optimizer steps (overrides --epochs)")
    seed: int = _f(42, "random seed (data order, dropout, negative sampling)")
    device: str = _f("auto", "auto, cpu, cuda or cuda:N (multi-GPU: launch with torchrun / accelerate)")
    dtype: str = _f("fp32", "bf16|fp16|fp32 mixed precision", one_of=DTYPES)
    grad_checkpointing: bool = _f(False, "gradient checkpointing: the trunk, and the head recomputed chunk by chunk")
    save_steps: int = _f(500, "write a resumable checkpoint every N steps", check="positive")
    save_total_limit: int = _f(2, "keep the last N checkpoints")
    log_every: int = _f(10, "log loss, ℓ0 and step time every N steps", check="positive")
    resume: bool = _f(False, "continue the unfinished run in OUTPUT.partial from its last checkpoint")
    overwrite: bool = _f(False, "replace an existing OUTPUT when this run ends (it stays until then); without "
                                "--resume, also discard an unfinished OUTPUT.partial and start over")

    def validate(self) -> None:
        from .arguments import check_settings

        for name in ("encoder", "train_data", "output"):
            if not getattr(self, name):
                raise UsageError(f"--{name.replace('_', '-')} is required (see --help)")
        check_settings(self)  # each field's declared rule: positive, >= 0, in [0, 1], one of ...
        if self.max_steps == 0 or self.max_steps < -1:
            raise UsageError(f"--max-steps must be positive (or -1 for --epochs), got {self.max_steps}")
        dev = [self.dev_topics, self.dev_qrels, self.dev_corpus]
        if any(dev) and not all(dev):
            raise UsageError("--dev-topics, --dev-qrels and --dev-corpus go together")
        if not os.path.isfile(self.train_data):
            raise UsageError(f"training data {self.train_data} does not exist")
        check_device(self.device, allow_auto=True)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_device(device: str, *, allow_auto: bool = False) -> None:
    """``--device`` names a device this machine has (one line, exit 2, before any model is loaded)."""
    if device == "cpu" or (allow_auto and device == "auto"):
        return
    m = re.fullmatch(r"cuda(?::(\d+))?", device)
    if not m:
        raise UsageError(f"--device must be {'auto, ' if allow_auto else ''}cpu, cuda or cuda:N, got {device!r}")
    import torch

    if not torch.cuda.is_available():
        build = "a CPU-only build of torch" if torch.version.cuda is None else "no CUDA device is visible"
        raise UsageError(f"--device {device}: CUDA is not available here ({build}); use --device cpu")
    if m.group(1) is not None and int(m.group(1)) >= torch.cuda.device_count():
        raise UsageError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s) "
                         f"(cuda:0..cuda:{torch.cuda.device_count() - 1})")


def recipe_names() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def read_recipe(name: str) -> dict[str, Any]:
    """A recipe's settings: a shipped name or a YAML file path. Unknown keys are errors."""
    import yaml

    path = RECIPES_DIR / f"{name}.yaml"
    if not path.is_file():
        if name.endswith((".yaml", ".yml")) and os.path.isfile(name):
            path = Path(name)
        else:
            raise UsageError(f"unknown recipe {name!r} (known: {', '.join(recipe_names())}, or a .yaml file)")
    try:
        obj = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise UsageError(f"cannot read recipe {path}: {str(e).splitlines()[0]}") from None
    if not isinstance(obj, dict):
        raise UsageError(f"recipe {path}: expected a mapping of settings")
    known = {f.name for f in fields(TrainConfig)} - {"encoder", "train_data", "output", "recipe", "resume",
                                                      "overwrite"}
    unknown = sorted(set(obj) - known - set(RECIPE_META))
    if unknown:
        raise UsageError(f"recipe {path}: unknown settings {unknown}")
    from .arguments import check_types

    check_types(TrainConfig, obj, f"recipe {path}")
    return obj


def recipe_settings(name: str) -> dict[str, Any]:
    """A recipe's values without its meta keys: the defaults that the command line overrides."""
    return {k: v for k, v in read_recipe(name).items() if k not in RECIPE_META}


def parse_config(parser, argv) -> TrainConfig:
    """The command line as a TrainConfig (``parser``: :func:`.arguments.make_parser` of TrainConfig): dataclass
    defaults < ``--recipe`` < flags."""
    from .arguments import parse

    return parse(parser, argv, defaults_from=recipe_settings)


def make_config(explicit: dict[str, Any]) -> tuple[TrainConfig, dict[str, Any]]:
    """Defaults < recipe < explicit (non-None) values. Returns the config and the recipe's meta keys."""
    values: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    if explicit.get("recipe"):
        r = read_recipe(explicit["recipe"])
        meta = {k: r.pop(k) for k in RECIPE_META if k in r}
        values.update(r)
    values.update({k: v for k, v in explicit.items() if v is not None})
    try:
        cfg = TrainConfig(**values)
    except TypeError as e:
        raise UsageError(str(e)) from None
    return cfg, meta
