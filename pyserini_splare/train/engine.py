"""The training run: sentence-transformers' ``SparseEncoderTrainer`` on the toolkit's own SparseModel.

No training loop of our own (docs/training.md, "The engine"); this module adds the model (LoRA or full
fine-tuning), resuming the trainable tensors by name, the progress bar and per-step log, dev evaluation and
the output built in ``OUTPUT.partial`` as a checkpoint of the starting encoder's kind.
"""

from __future__ import annotations

import errno
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
from .._outputs import check_output_dir, partial_dir
from ..encode.kinds import trainable
from .config import TrainConfig
from .data_format import columns, first_has_scores, training_rows
from .file_modes import share_like_open
from .losses import LossConfig

CONFIG_FILE = "train_config.json"
LOG_FILE = "train_log.jsonl"
CHECKPOINTS = "checkpoints"
DEV_DIR = "dev"
# τ when the loss's own default applies (no --temperature): the SPLARE recipe's 80 for Llama Scope SAEs
# (App. B, second-hand) for KL; 1 for InfoNCE on dot products (sentence-transformers' default scale).
DEFAULT_TEMPERATURE = {"kl": 80.0, "marginmse": 1.0, "infonce": 1.0}


def _check_output(cfg: TrainConfig) -> Path:
    """The one output rule (``_outputs.check_output_dir``: an existing OUTPUT needs --overwrite, its folder must exist
    and be writable), then the unfinished run: continued with --resume, discarded with --overwrite."""
    out = check_output_dir(cfg.output, overwrite=cfg.overwrite, what="--output")
    part = partial_dir(out)
    if part.exists() and not (cfg.resume or cfg.overwrite):
        raise UsageError(f"an unfinished run is in {part}: pass --resume to continue it, --overwrite to start over, "
                         "or remove it")
    if cfg.resume and not part.exists():
        raise UsageError(f"--resume: no unfinished run in {part}")
    if cfg.resume and not os.access(part, os.W_OK | os.X_OK):
        raise UsageError(f"--resume: cannot write in {part} (permission denied)")
    return part


# What a resumed run may change (not what is trained; why --max-steps is not here: docs/training.md, "Resuming").
DEV_SETTINGS = ("dev_topics", "dev_qrels", "dev_corpus", "dev_metrics")
RESUME_MAY_CHANGE = ("device", "grad_checkpointing", "save_steps", "save_total_limit", "log_every", "dev_every",
                     *DEV_SETTINGS)
# Not settings of the run: the output (the same by construction), the flags themselves, and a recipe's name (its
# values are compared as the settings they set).
_NOT_COMPARED = ("output", "resume", "overwrite", "recipe")


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
        out.update({k: v for k, v in rec["identity"].items() if k not in RESUME_MAY_CHANGE})
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


def _dev_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The dev settings a resume changes (by identity where the record has one), as '--flag old -> new'."""
    out = []
    for name in DEV_SETTINGS:
        ids = [(rec.get("identity") or {}).get(name, rec.get(name)) for rec in (old, new)]
        if ids[0] != ids[1]:
            out.append(f"--{name.replace('_', '-')} {_show(old.get(name))} -> {_show(new.get(name))}")
    return out


def _check_dev(cfg: TrainConfig) -> dict[str, Any] | None:
    """The dev set, checked whole before anything is created (metrics, topics and qrels sharing queries, a corpus
    holding judged-relevant documents). Returns the topics, metrics and the corpus's size (for the bar)."""
    if not cfg.dev_topics:
        return None
    from ..corpus import open_corpus
    from ..eval import parse_metrics
    from ..topics import get_qrels, get_topics

    metrics = [m.strip() for m in cfg.dev_metrics.split(",") if m.strip()]
    if not metrics:
        raise UsageError("--dev-metrics is empty (ir_measures names such as RR@10,nDCG@10)")
    parse_metrics(metrics)
    topics = get_topics(cfg.dev_topics)
    judged = get_qrels(cfg.dev_qrels).judgments
    shared = set(topics) & set(judged)
    if not shared:
        raise UsageError(f"--dev-qrels {cfg.dev_qrels} shares no query id with --dev-topics {cfg.dev_topics} "
                         f"(e.g. {next(iter(judged), None)!r} vs {next(iter(topics), None)!r}): wrong qrels for "
                         "these topics?")
    relevant = {d for q in shared for d, grade in judged[q].items() if grade > 0}
    n_docs = found = 0
    for doc in open_corpus(cfg.dev_corpus):
        n_docs += 1
        found += doc.id in relevant
    if not n_docs:
        raise UsageError(f"--dev-corpus {cfg.dev_corpus} holds no documents")
    if not found:
        raise UsageError(f"--dev-corpus {cfg.dev_corpus} holds none of the {len(relevant):,} documents that "
                         f"--dev-qrels {cfg.dev_qrels} judges relevant for the dev queries: wrong corpus?")
    unjudged = len(set(judged) - shared)
    if unjudged:
        print(f"warning: {unjudged} of {len(judged)} judged queries of --dev-qrels are not in --dev-topics and "
              "score 0 in the dev metrics (trec_eval -c)", file=sys.stderr)
    return {"topics": topics, "metrics": metrics, "docs": n_docs}


def _check_kind(spec: str) -> str:
    from ..encode import resolve_spec

    kind, _ = resolve_spec(spec)
    if kind not in trainable():  # the kind table's training mode (encode/kinds.py)
        raise UsageError(f"encoder kind {kind!r} cannot be trained here (trainable: {', '.join(trainable())})")
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
    """``--topk-query/--topk-doc`` as the model's pruning module, saved with it (docs/training.md, "Top-K pooling
    in training")."""
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

        def add_model_card_callback(self, default_args_dict) -> None:
            """No model card: the output is the toolkit's checkpoint, not a sentence-transformers model, and the
            card's callback computes "widget examples" over the data under a progress bar of its own."""

        def _load_from_checkpoint(self, checkpoint_path: str, model=None) -> None:
            load_trainable_state(self.model[0], checkpoint_path)

        def training_step(self, *args, **kwargs):
            loss = super().training_step(*args, **kwargs)
            self.step_loss += float(loss.detach())  # already divided by the accumulation steps
            return loss

    return Trainer


def _callbacks(trainer, loss, cfg: TrainConfig, part: Path, log_path: Path, dev: dict | None) -> list:
    """The run's callbacks, the StepLog (its bar) first."""
    from transformers import TrainerCallback

    class StepLog(TrainerCallback):
        """Progress bar (loss, ℓ0 of queries and documents, step time) and ``train_log.jsonl`` (every step).

        The bar starts at the first step, after the dev evaluation before training, and a dev evaluation
        between steps is taken out of its clock (:meth:`resume_clock`): its rate and ETA are training's."""

        def __init__(self):
            self.bar = None
            self.t0 = None
            self.cuda = False

        def on_train_begin(self, args, state, control, **kw):
            self.cuda = args.device.type == "cuda"

        def on_step_begin(self, args, state, control, **kw):
            if self.bar is None:
                self.bar = progress(total=state.max_steps, initial=state.global_step, desc="train", unit="step")
            self.t0 = time.perf_counter()
            trainer.step_loss = 0.0

        def resume_clock(self):
            if self.bar is not None:
                self.bar.unpause()  # tqdm: restart the clock from the last update, dropping the pause

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

        def on_save(self, args, state, control, **kw):
            share_like_open(Path(args.output_dir) / f"checkpoint-{state.global_step}")

        def on_train_end(self, args, state, control, **kw):
            self.close()

        def close(self):
            if self.bar is not None:
                self.bar.close()

    step_log = StepLog()

    class DevEval(TrainerCallback):
        """The toolkit's encode -> exact index -> search -> eval on the dev set, before, every N steps, after."""

        def on_train_begin(self, args, state, control, **kw):
            if state.global_step == 0:
                _dev_evaluation(trainer.model[0].sparse_model, dev, cfg, part, 0)

        def on_step_end(self, args, state, control, **kw):
            if cfg.dev_every and state.global_step % cfg.dev_every == 0 and state.global_step < state.max_steps:
                _dev_evaluation(trainer.model[0].sparse_model, dev, cfg, part, state.global_step)
                step_log.resume_clock()

    cbs = [step_log]
    if dev is not None:
        cbs.append(DevEval())
    return cbs


def _dev_evaluation(model, dev: dict, cfg: TrainConfig, part: Path, step: int, final: bool = False) -> None:
    """One dev evaluation under a bar of its own; a row of ``OUT/dev/metrics.jsonl`` and a line on stderr."""
    from .dev_eval import evaluate_model

    name = "final" if final else f"step-{step}"
    (part / DEV_DIR).mkdir(exist_ok=True)
    res = evaluate_model(model, dev["topics"], cfg.dev_corpus, cfg.dev_qrels, dev["metrics"], part / DEV_DIR / name,
                         keep_vectors=final, desc=f"dev ({'final' if final else f'step {step}'})",
                         n_docs=dev["docs"])
    with open(part / DEV_DIR / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"step": step, **({"final": True} if final else {}), **res}) + "\n")
    print(f"dev {'final' if final else f'step {step}'}: " + " ".join(f"{k}={v:.4f}" for k, v in res.items()),
          file=sys.stderr)


def _truncate_log(path: Path, step: int) -> None:
    """On resume, drop log rows after the checkpoint's step (they will be trained again)."""
    if not path.exists():
        return
    rows = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln and json.loads(ln)["step"] <= step]
    path.write_text("".join(r + "\n" for r in rows), encoding="utf-8")


def _loss_line(log_path: Path, resumed_at: int | None) -> tuple[float, str]:
    """The mean loss over every step of the run, read from ``train_log.jsonl`` (the Trainer's own mean covers only
    the steps of this process: after --resume, not those before it)."""
    rows = [json.loads(ln) for ln in log_path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not rows:
        return float("nan"), "no steps logged"
    mean = sum(r["loss"] for r in rows) / len(rows)
    steps = [r["step"] for r in rows]
    covered = f"steps {steps[0]}-{steps[-1]}" if steps == list(range(steps[0], steps[-1] + 1)) else \
        f"{len(steps)} logged steps"
    resumed = f", resumed at step {resumed_at}" if resumed_at else ""
    return mean, f"mean loss {mean:.4f} over {covered}{resumed}"


def train(cfg: TrainConfig, callbacks: Sequence[Any] = ()) -> dict[str, Any]:
    """Run training as configured; returns a summary. Bad input (settings, paths, the device, the training data,
    the dev set, a resume that is another run) raises UsageError before anything is created or the model loaded."""
    cfg.validate()
    kind = _check_kind(cfg.encoder)
    part = _check_output(cfg)
    unfinished = _read_unfinished(part) if cfg.resume else None
    has_scores = first_has_scores(cfg.train_data)
    loss_cfg = _loss_config(cfg, has_scores)
    mode = trainable()[kind] if cfg.tune == "auto" else cfg.tune
    record = _run_record(cfg, kind, mode, loss_cfg)
    if unfinished is not None:
        _check_resume(part, unfinished, record)
    dev = _check_dev(cfg)
    changed = _dev_changes(unfinished, record) if unfinished is not None else []
    if changed:
        print(f"note: the dev set differs from the unfinished run's ({'; '.join(changed)}): "
              f"rows of {Path(cfg.output) / DEV_DIR / 'metrics.jsonl'} after the resume measure the new one",
              file=sys.stderr)

    import torch
    from sentence_transformers.sparse_encoder import SparseEncoder, SparseEncoderTrainingArguments
    from transformers import PrinterCallback, ProgressCallback

    from ..encode import load_encoder
    from .losses import build_loss
    from .st_module import ToolkitSparseModule

    torch.manual_seed(cfg.seed)
    if cfg.overwrite and not cfg.resume and part.exists():  # every check passed: start over
        shutil.rmtree(part)
    try:
        cache = tempfile.mkdtemp(prefix=".train-data-", dir=Path(cfg.output).parent)
    except OSError as e:  # checked writable above, yet a mount or an ACL can still refuse: name the user's path
        if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise  # the machine (disk full, quota): exit 1 by the contract
        raise UsageError(f"--output {cfg.output}: cannot write in {Path(cfg.output).parent} ({e.strerror})") from None
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
        ckpt = resumed_at = None
        if not fresh:
            ckpt = _last_checkpoint(part)
            if ckpt is not None:
                resumed_at = int(Path(ckpt).name.rsplit("-", 1)[-1])
                _truncate_log(log_path, resumed_at)
            else:
                log_path.unlink(missing_ok=True)
        ours = _callbacks(trainer, loss, cfg, part, log_path, dev)
        for cb in ours + list(callbacks):
            trainer.add_callback(cb)
        try:
            result = trainer.train(resume_from_checkpoint=ckpt)
        finally:  # interrupted or failed: the bar ends here too (on_train_end is not called)
            ours[0].close()
        model.eval()
        model.save(part)
        if dev is not None:
            _dev_evaluation(model, dev, cfg, part, trainer.state.global_step, final=True)
        shutil.rmtree(part / CHECKPOINTS, ignore_errors=True)
        share_like_open(part)
        mean, line = _loss_line(log_path, resumed_at)
        if Path(cfg.output).exists():  # --overwrite (checked up front): the old output goes only now
            shutil.rmtree(cfg.output)
        os.replace(part, cfg.output)
        return {"steps": trainer.state.global_step, "train_loss": mean, "loss_line": line,
                "trainer_loss": result.training_loss, "output": cfg.output}
    finally:
        shutil.rmtree(cache, ignore_errors=True)
