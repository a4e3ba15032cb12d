"""The training run: sentence-transformers' ``SparseEncoderTrainer`` on the toolkit's own SparseModel.

No training loop of our own: multi-GPU (torchrun / accelerate, DDP), bf16/fp16, gradient accumulation,
checkpoints, resume, LR schedule and logging are the Hugging Face Trainer's, under sentence-transformers'
``SparseEncoderTrainer`` and its losses (:mod:`.losses`). What this module adds, as hooks and callbacks:

* the model: ``load_encoder(SPEC)`` -> :class:`~.st_module.ToolkitSparseModule` (the trained modules are
  the encode modules); a LoRA adapter on the trunk via peft for LLM trunks (SPLARE, SPLADE-LLM), full
  fine-tuning for BERT SPLADE; an SAE is made of buffers and never trained;
* resuming: a checkpoint holds the toolkit checkpoint plus the trainable tensors by name
  (``_load_from_checkpoint`` copies them back, the Trainer restores optimizer, scheduler, RNG and data
  position);
* a progress bar with loss, ℓ0 of queries and documents and step time; a per-step log
  (``train_log.jsonl``); dev evaluation through :mod:`.dev_eval`;
* the output: built in ``OUTPUT.partial`` and renamed to ``OUTPUT`` when training ends, a checkpoint
  directory of the starting encoder's kind (``splade:OUTPUT``, ``splare:OUTPUT``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from .._console import progress
from .._errors import UsageError
from .._outputs import partial_dir
from .config import TRAINABLE_KINDS, TrainConfig
from .data_format import LABEL, columns, first_has_scores, training_rows
from .losses import LossConfig

CONFIG_FILE = "train_config.json"
LOG_FILE = "train_log.jsonl"
CHECKPOINTS = "checkpoints"
DEV_DIR = "dev"
# τ when the loss's own default applies (no --temperature): the SPLARE recipe's 80 for Llama Scope SAEs
# (App. B, second-hand) for KL; 1 for InfoNCE on dot products (sentence-transformers' default scale).
DEFAULT_TEMPERATURE = {"kl": 80.0, "marginmse": 1.0, "infonce": 1.0}


def _check_output(cfg: TrainConfig) -> Path:
    out = Path(cfg.output)
    part = partial_dir(out)
    if out.exists():
        raise UsageError(f"{out} already exists (a finished run; choose another --output)")
    if not out.parent.is_dir():
        raise UsageError(f"parent directory {out.parent} does not exist")
    if part.exists() and not cfg.resume:
        raise UsageError(f"an unfinished run is in {part}: pass --resume to continue it, or remove it")
    if cfg.resume and not part.exists():
        raise UsageError(f"--resume: no unfinished run in {part}")
    return part


# What a resumed run may change: where and how it runs, and how often it saves, logs and evaluates -- not
# what is trained. Everything else in TrainConfig must equal the unfinished run's (docs/training.md,
# "Resuming"). --max-steps is not here: the linear LR decay and the λ warm-up are fractions of it, so the
# Trainer would continue on another schedule than the one the checkpoint's optimizer state was made on.
RESUME_MAY_CHANGE = ("device", "grad_checkpointing", "save_steps", "save_total_limit", "log_every", "dev_every")
# Not settings of the run: the output (the same by construction), the flag itself, and a recipe's name (its
# values are compared as the settings they set).
_NOT_COMPARED = ("output", "resume", "recipe")


def _identity(cfg: TrainConfig, kind: str) -> dict[str, str | None]:
    """What the run's inputs are, beyond how they are spelled: the training data by content (it may be copied
    to another disk between runs; a file regenerated in place is another run's data), the encoder and the dev
    set by real path (a registered topics name or a hub id as it is)."""
    from ..encode import resolve_spec
    from ..topics import sha256_file

    ident: dict[str, str | None] = {"train_data": "sha256:" + sha256_file(cfg.train_data)}
    _, where = resolve_spec(cfg.encoder)
    ident["encoder"] = f"{kind}:{os.path.realpath(where)}" if os.path.exists(where) else cfg.encoder
    for name in ("dev_topics", "dev_qrels", "dev_corpus"):
        value = getattr(cfg, name)
        ident[name] = os.path.realpath(value) if value and os.path.exists(value) else value
    return ident


def _run_record(cfg: TrainConfig, kind: str, mode: str, loss_cfg: LossConfig) -> dict[str, Any]:
    """``train_config.json``: the settings as given, as resolved, and the inputs' identities (what --resume
    compares)."""
    return {**cfg.to_json(), "kind": kind, "tune": mode, "loss_resolved": dict(loss_cfg.__dict__),
            # the effective batch and each process's share of the data (torchrun/accelerate set WORLD_SIZE)
            "world_size": int(os.environ.get("WORLD_SIZE", "1")), "identity": _identity(cfg, kind)}


def _read_unfinished(part: Path) -> dict[str, Any]:
    path = part / CONFIG_FILE
    if not path.is_file():
        raise UsageError(f"--resume: {path} is missing, so the unfinished run's settings cannot be checked: "
                         f"remove {part} to start over")
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise UsageError(f"--resume: cannot read the unfinished run's settings {path} ({str(e).splitlines()[0]}): "
                         f"remove {part} to start over") from None
    if not isinstance(old, dict):
        raise UsageError(f"--resume: {path} is not a JSON object of settings: remove {part} to start over")
    return old


def _compared(rec: dict[str, Any], with_identity: bool) -> dict[str, Any]:
    """The settings of a ``train_config.json`` record that decide what is trained, as the run resolved them."""
    from dataclasses import fields

    out = {}
    for f in fields(TrainConfig):
        if f.name not in RESUME_MAY_CHANGE and f.name not in _NOT_COMPARED:
            out[f.name] = rec.get(f.name, f.default)  # a key an older version did not write had its default
    resolved = rec.get("loss_resolved") or {}
    for name in ("loss", "temperature", "flops_schedule"):  # --loss/--temperature unset: what they became
        if name in resolved:
            out[name] = resolved[name]
    out["tune"] = rec.get("tune", out["tune"])
    if out["tune"] != "lora":  # full fine-tuning: no adapter
        for name in ("lora_r", "lora_alpha", "lora_targets"):
            out.pop(name)
    if out["loss"] == "marginmse":  # no temperature in MarginMSE
        out.pop("temperature", None)
    if out["max_steps"] != -1:  # the Trainer ignores --epochs when --max-steps is given
        out.pop("epochs")
    if "world_size" in rec:
        out["world_size"] = rec["world_size"]
    if with_identity:
        out.update(rec["identity"])
    return out


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _check_resume(part: Path, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Refuse a resume whose settings would train something other than the unfinished run (UsageError naming
    each differing setting with both values); nothing in ``part`` is touched before this passes."""
    # Inputs are compared by identity when the old record has it (this version wrote it), else as spelled.
    with_identity = isinstance(old.get("identity"), dict)
    a, b = _compared(old, with_identity), _compared(new, with_identity)
    if "world_size" not in a:
        b.pop("world_size", None)
    diffs = []
    for name in list(b) + [k for k in a if k not in b]:
        va, vb = a.get(name), b.get(name)
        if va == vb:
            continue
        if name == "train_data" and with_identity:  # the content differs: name both files and their hashes
            va, vb = (f"{rec['train_data']} ({ident[:19]}...)" for rec, ident in ((old, va), (new, vb)))
        label = "WORLD_SIZE (processes)" if name == "world_size" else "--" + name.replace("_", "-")
        diffs.append(f"{label} {_show(va)} vs {_show(vb)}")
    if diffs:
        raise UsageError(f"--resume: settings differ from the unfinished run's (its value vs this command's): "
                         f"{'; '.join(diffs)}: resume with the same settings, or remove {part}")


def _check_kind(spec: str) -> str:
    from ..encode import resolve_spec

    kind, _ = resolve_spec(spec)
    if kind not in TRAINABLE_KINDS:
        raise UsageError(f"encoder kind {kind!r} cannot be trained here (trainable: {', '.join(TRAINABLE_KINDS)})")
    return kind


def _loss_config(cfg: TrainConfig, has_scores: bool) -> LossConfig:
    loss = cfg.loss or ("kl" if has_scores else "infonce")
    if loss in ("kl", "marginmse") and not has_scores:
        raise UsageError(f"{cfg.train_data}: --loss {loss} needs teacher scores (pos_scores/neg_scores); "
                         "use --loss infonce, or mine with train.data --teacher")
    tau = cfg.temperature if cfg.temperature is not None else DEFAULT_TEMPERATURE[loss]
    return LossConfig(loss=loss, temperature=tau, flops_query=cfg.flops_query, flops_doc=cfg.flops_doc,
                      flops_warmup=cfg.flops_warmup)


def _dataset(cfg: TrainConfig, with_label: bool, cache_dir: str):
    """The training rows as a datasets.Dataset, built by streaming (and so validating) the whole file first:
    a bad line is reported before anything is written at the output path."""
    from datasets import Dataset
    from datasets.exceptions import DatasetGenerationError

    def gen(path, negatives, with_label, seed):
        yield from training_rows(path, negatives, with_label, seed)

    from datasets.utils import logging as ds_logging

    bars = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()  # "Generating train split" on stderr: our errors are one line
    try:
        ds = Dataset.from_generator(gen, gen_kwargs={"path": cfg.train_data, "negatives": cfg.negatives,
                                                     "with_label": with_label, "seed": cfg.seed},
                                    cache_dir=cache_dir)
    except DatasetGenerationError as e:
        cause = e.__cause__ or e.__context__
        while cause is not None and not isinstance(cause, UsageError):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:
            raise cause from None
        raise
    finally:
        if bars:
            ds_logging.enable_progress_bar()
    return ds.select_columns(columns(cfg.negatives, with_label))


def _tune(model, mode: str, cfg: TrainConfig) -> None:
    """Make the trainable parameters trainable (``mode`` "lora": an adapter on the trunk; else everything but
    buffers), with gradient checkpointing if asked."""
    if mode == "lora":
        for p in model.parameters():
            p.requires_grad_(False)
        if model.trunk.peft is None:
            model.trunk.add_lora(r=cfg.lora_r, alpha=cfg.lora_alpha, target_modules=cfg.lora_targets)
        else:  # the checkpoint's own adapter, loaded unmerged: training continues it
            for n, p in model.trunk.peft.named_parameters():
                p.requires_grad_("lora_" in n)
    else:
        for p in model.parameters():
            p.requires_grad_(True)
    if cfg.grad_checkpointing:
        root = model.trunk.root
        root.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if mode == "lora" and hasattr(root, "enable_input_require_grads"):
            root.enable_input_require_grads()
        if hasattr(model.pooling, "checkpoint_chunks"):  # the head's (tokens, V) outputs: recomputed too
            model.pooling.checkpoint_chunks = True
    model.train()


def _topk_pooling(model, cfg: TrainConfig) -> None:
    """``--topk-query/--topk-doc``: Top-K pooling inside training (the SPLARE paper's pooled models). The model's
    pruning module keeps the K largest weights of each pooled vector (``pooled * mask``: only kept weights get
    gradients); ``SparseModel.save`` records it (``pruning.json``), so ``encode`` applies the same Top-K. Both
    0: the starting checkpoint's own pruning, if it records one, stays."""
    if not (cfg.topk_query or cfg.topk_doc):
        return
    from ..encode.modules.pruning import Pruning

    size = int(model.space.size)
    for side, k in (("query", cfg.topk_query), ("doc", cfg.topk_doc)):
        if k >= size:
            raise UsageError(f"--topk-{side} {k} keeps all {size:,} features of {cfg.encoder}: use a smaller K, "
                             "or 0 for no Top-K")
    if model.pruning is not None and model.pruning.mode == "mass":
        raise UsageError(f"{cfg.encoder} prunes by mass ({model.pruning.mass}): --topk-query/--topk-doc cannot "
                         "be combined with it")
    model.pruning = Pruning("topk", cfg.topk_query, cfg.topk_doc)


def _warmup(ratio: float) -> dict[str, float]:
    """transformers 5 takes the LR warm-up ratio as a float ``warmup_steps`` (``warmup_ratio`` is deprecated)."""
    import transformers

    return {"warmup_steps": float(ratio)} if int(transformers.__version__.split(".")[0]) >= 5 else {"warmup_ratio": ratio}


def _last_checkpoint(part: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    d = part / CHECKPOINTS
    return get_last_checkpoint(str(d)) if d.is_dir() else None


def _trainer_class():
    from sentence_transformers.sparse_encoder import SparseEncoderTrainer

    from .st_module import load_trainable_state

    class Trainer(SparseEncoderTrainer):
        """SparseEncoderTrainer + two hooks: resume copies the checkpoint's trainable tensors back by name
        (the model is not rebuilt from the checkpoint), and each step's loss is kept at full precision."""

        step_loss = 0.0

        def _load_from_checkpoint(self, checkpoint_path: str, model=None) -> None:
            load_trainable_state(self.model[0], checkpoint_path)

        def training_step(self, *args, **kwargs):
            loss = super().training_step(*args, **kwargs)
            self.step_loss += float(loss.detach())  # already divided by the accumulation steps
            return loss

    return Trainer


def _callbacks(trainer, loss, cfg: TrainConfig, part: Path, log_path: Path, dev: dict | None, start_step: int):
    from transformers import TrainerCallback

    class StepLog(TrainerCallback):
        """Progress bar (loss, ℓ0 of queries and documents, step time) and ``train_log.jsonl`` (every step)."""

        def __init__(self):
            self.bar = None
            self.t0 = None
            self.cuda = False

        def on_train_begin(self, args, state, control, **kw):
            self.cuda = args.device.type == "cuda"
            self.bar = progress(total=state.max_steps, initial=state.global_step, desc="train", unit="step")

        def on_step_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()
            trainer.step_loss = 0.0

        def on_step_end(self, args, state, control, **kw):
            dt = time.perf_counter() - self.t0
            row = {"step": state.global_step, "loss": trainer.step_loss,
                   "l0_query": loss.query_regularizer.last_l0, "l0_doc": loss.document_regularizer.last_l0,
                   "lambda_query": loss.query_regularizer_weight, "lambda_doc": loss.document_regularizer_weight,
                   "lr": trainer.lr_scheduler.get_last_lr()[0], "seconds": round(dt, 4)}
            if self.cuda:
                import torch

                # peak since the run started (the allocator's, on this process's device): what sizes a GPU
                row["gpu_peak_gib"] = round(torch.cuda.max_memory_allocated() / 2 ** 30, 3)
            with open(log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
            self.bar.update(1)
            if state.global_step % cfg.log_every == 0 or state.global_step == state.max_steps:
                self.bar.set_postfix(loss=f"{row['loss']:.4f}", l0_q=f"{row['l0_query']:.0f}",
                                     l0_d=f"{row['l0_doc']:.0f}", s_step=f"{dt:.2f}")

        def on_train_end(self, args, state, control, **kw):
            if self.bar is not None:
                self.bar.close()

    class DevEval(TrainerCallback):
        """The toolkit's encode -> exact index -> search -> eval on the dev set, before, every N steps, after."""

        def _run(self, step: int, final: bool = False):
            from .dev_eval import evaluate_model

            m = trainer.model[0].sparse_model
            res = evaluate_model(m, dev["topics"], cfg.dev_corpus, cfg.dev_qrels, dev["metrics"],
                                 part / DEV_DIR / f"step-{step}", keep_vectors=final)
            with open(part / DEV_DIR / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps({"step": step, **res}) + "\n")
            print(f"dev step {step}: " + " ".join(f"{k}={v:.4f}" for k, v in res.items()), file=sys.stderr)

        def on_train_begin(self, args, state, control, **kw):
            if state.global_step == 0:
                (part / DEV_DIR).mkdir(exist_ok=True)
                self._run(0)

        def on_step_end(self, args, state, control, **kw):
            if cfg.dev_every and state.global_step % cfg.dev_every == 0 and state.global_step < state.max_steps:
                self._run(state.global_step)

    cbs = [StepLog()]
    if dev is not None:
        cbs.append(DevEval())
    return cbs


def _truncate_log(path: Path, step: int) -> None:
    """On resume, drop log rows after the checkpoint's step (they will be trained again)."""
    if not path.exists():
        return
    rows = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln and json.loads(ln)["step"] <= step]
    path.write_text("".join(r + "\n" for r in rows), encoding="utf-8")


def train(cfg: TrainConfig, callbacks: Sequence[Any] = ()) -> dict[str, Any]:
    """Run training as configured; returns a summary. Bad input raises UsageError before OUTPUT is touched."""
    cfg.validate()
    kind = _check_kind(cfg.encoder)
    part = _check_output(cfg)
    unfinished = _read_unfinished(part) if cfg.resume else None
    has_scores = first_has_scores(cfg.train_data)
    loss_cfg = _loss_config(cfg, has_scores)
    mode = TRAINABLE_KINDS[kind] if cfg.tune == "auto" else cfg.tune
    record = _run_record(cfg, kind, mode, loss_cfg)
    if unfinished is not None:
        _check_resume(part, unfinished, record)
    dev = None
    if cfg.dev_topics:
        from ..eval import parse_metrics
        from ..topics import get_topics

        metrics = [m.strip() for m in cfg.dev_metrics.split(",") if m.strip()]
        parse_metrics(metrics)
        dev = {"topics": get_topics(cfg.dev_topics), "metrics": metrics}

    import torch
    from sentence_transformers.sparse_encoder import SparseEncoder, SparseEncoderTrainingArguments
    from transformers import PrinterCallback, ProgressCallback

    from ..encode import load_encoder
    from .losses import build_loss
    from .st_module import ToolkitSparseModule

    torch.manual_seed(cfg.seed)
    cache = tempfile.mkdtemp(prefix=".train-data-", dir=Path(cfg.output).parent)
    try:
        ds = _dataset(cfg, loss_cfg.needs_scores, cache)
        device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        # A frozen base under LoRA is held in the training dtype (bf16 halves an 8B trunk); weights that are
        # trained stay float32 (mixed precision autocasts the matmuls).
        load_dtype = cfg.dtype if (mode == "lora" and cfg.dtype != "fp32" and device != "cpu") else "fp32"
        # LoRA: an adapter already in the checkpoint stays a separate, trainable adapter (merged, it would be
        # lost when the new one is saved beside the untouched backbone).
        model = load_encoder(cfg.encoder, dtype=load_dtype, **({"merge_lora": False} if mode == "lora" else {}))
        _tune(model, mode, cfg)
        _topk_pooling(model, cfg)
        st_model = SparseEncoder(modules=[ToolkitSparseModule(model, cfg.max_length)], device=device)
        loss, loss_callbacks = build_loss(st_model, loss_cfg)
        doc_cols = ["positive"] + [f"negative_{i}" for i in range(1, cfg.negatives + 1)]
        fresh = not cfg.resume
        part.mkdir(exist_ok=True)
        with open(part / CONFIG_FILE, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=2)
        args = SparseEncoderTrainingArguments(
            output_dir=str(part / CHECKPOINTS), per_device_train_batch_size=cfg.batch_size,
            gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.lr, **_warmup(cfg.warmup_ratio),
            lr_scheduler_type="linear", num_train_epochs=cfg.epochs, max_steps=cfg.max_steps, seed=cfg.seed,
            data_seed=cfg.seed, bf16=cfg.dtype == "bf16", fp16=cfg.dtype == "fp16", use_cpu=device == "cpu",
            save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=cfg.save_total_limit,
            logging_steps=cfg.log_every, report_to=[], disable_tqdm=True, dataloader_drop_last=True,
            router_mapping={"query": "query", **{c: "document" for c in doc_cols}},
        )
        Trainer = _trainer_class()
        trainer = Trainer(model=st_model, args=args, train_dataset=ds, loss=loss, callbacks=list(loss_callbacks))
        for cb in (PrinterCallback, ProgressCallback):
            trainer.remove_callback(cb)
        log_path = part / LOG_FILE
        ckpt = None
        if not fresh:
            ckpt = _last_checkpoint(part)
            if ckpt is not None:
                _truncate_log(log_path, int(Path(ckpt).name.rsplit("-", 1)[-1]))
            else:
                log_path.unlink(missing_ok=True)
        for cb in _callbacks(trainer, loss, cfg, part, log_path, dev, 0) + list(callbacks):
            trainer.add_callback(cb)
        result = trainer.train(resume_from_checkpoint=ckpt)
        model.eval()
        model.save(part)
        if dev is not None:
            from .dev_eval import evaluate_model

            final = evaluate_model(model, dev["topics"], cfg.dev_corpus, cfg.dev_qrels, dev["metrics"],
                                   part / DEV_DIR / "final", keep_vectors=True)
            with open(part / DEV_DIR / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps({"step": trainer.state.global_step, "final": True, **final}) + "\n")
            print("dev final: " + " ".join(f"{k}={v:.4f}" for k, v in final.items()), file=sys.stderr)
        shutil.rmtree(part / CHECKPOINTS, ignore_errors=True)
        os.replace(part, cfg.output)
        return {"steps": trainer.state.global_step, "train_loss": result.training_loss, "output": cfg.output}
    finally:
        shutil.rmtree(cache, ignore_errors=True)
