"""``train --resume`` continues only the run it interrupted: the unfinished run's ``train_config.json`` is compared
with the new command; a setting that changes what is trained (lr, loss, Top-K, seed, batch, data ...) is refused
in one line naming both values, with ``OUT.partial`` left byte for byte as it was; settings that do not (how often
to save/log/evaluate, the device, gradient checkpointing, another spelling of the same inputs) resume, and the
result equals an uninterrupted run (SPLADE-tiny, real weights, a few steps of batch 2 at 32 tokens)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

import sentence_transformers  # noqa: F401  (a required dependency: imported, not skipped)
import torch

from pyserini_splare._errors import UsageError

pytestmark = pytest.mark.train

# Hand-written rows with teacher scores, so that the loss left unset resolves to kl (the resolved loss is what
# the check compares); 8 rows = 4 steps of batch 2.
TEXTS = [
    ("sorting algorithms for large files", "an external merge sort for files larger than memory",
     "a compiler for a block structured language"),
    ("hash tables and collisions", "open addressing and chaining resolve collisions in hash tables",
     "the design of a time sharing system"),
    ("parsing context free grammars", "an efficient parser for context free languages",
     "matrix inversion by gaussian elimination"),
    ("storage allocation in operating systems", "dynamic storage allocation with the buddy system",
     "a survey of numerical integration"),
    ("computing square roots", "newton iteration for square roots in floating point",
     "an interactive text editor"),
    ("list processing languages", "lisp and the processing of symbolic lists",
     "paging behaviour of virtual memory"),
    ("random number generation", "linear congruential generators and their tests",
     "the syntax of algol 60"),
    ("graph shortest paths", "shortest path algorithms on weighted graphs",
     "tape sorting with polyphase merge"),
]
COMMON = dict(max_steps=4, save_steps=2, batch_size=2, negatives=1, max_length=32, lr=1e-4, seed=3,
              log_every=1)


def write_data(path: Path) -> Path:
    rows = [{"query": q, "pos": [p], "neg": [n], "pos_scores": [9.0], "neg_scores": [1.0]} for q, p, n in TEXTS]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def config(**kw):
    from pyserini_splare.train.config import make_config

    cfg, _ = make_config(kw)  # the defaults (SPLARE's recipe) but for COMMON: no loss given, kl from the data
    return cfg


def folder_digest(d: Path) -> str:
    """Every file's relative path, bytes and modification time: a rewrite with the same bytes is a change too."""
    h = hashlib.sha256()
    for p in sorted(d.rglob("*")):
        h.update(str(p.relative_to(d)).encode())
        if p.is_file():
            h.update(p.read_bytes())
            h.update(str(p.stat().st_mtime_ns).encode())
    return h.hexdigest()


class Killed(Exception):
    """Stands for a kill (SIGKILL, a lost node) right after a checkpoint: OUT.partial stays as it was."""


def kill_after_checkpoint(step: int):
    """A trainer callback that raises :class:`Killed` once the step-``step`` checkpoint is written."""
    from transformers import TrainerCallback

    class KillAfterCheckpoint(TrainerCallback):
        def on_save(self, args, state, control, **kw):
            if state.global_step == step:
                raise Killed()

    return KillAfterCheckpoint()


@pytest.fixture(scope="module")
def unfinished(splade_tiny_path, tmp_path_factory):
    """A run killed right after its step-2 checkpoint (OUT.partial kept), and the uninterrupted run's output."""
    from pyserini_splare.train.engine import train

    d = tmp_path_factory.mktemp("resume")
    data = write_data(d / "train.jsonl")
    common = dict(encoder=f"splade:{splade_tiny_path}", train_data=str(data), **COMMON)
    train(config(output=str(d / "full"), **common))
    with pytest.raises(Killed):
        train(config(output=str(d / "run"), **common), callbacks=[kill_after_checkpoint(2)])
    part = d / "run.partial"
    assert (part / "checkpoints" / "checkpoint-2").is_dir() and (part / "train_config.json").is_file()
    return {"dir": d, "partial": part, "common": common, "full": d / "full"}


@pytest.fixture
def run_copy(unfinished, tmp_path):
    """A private copy of the unfinished run (a test that resumes it consumes it)."""
    part = tmp_path / "run.partial"
    shutil.copytree(unfinished["partial"], part)
    return tmp_path / "run"


def run_train(argv, capsys):
    from pyserini_splare.train.__main__ import main

    capsys.readouterr()
    rc = main(argv)
    return rc, [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]


def argv_of(settings: dict) -> list[str]:
    out = []
    for k, v in settings.items():
        out += ["--" + k.replace("_", "-"), str(v)]
    return out


@pytest.mark.parametrize("change, shown", [
    ({"lr": 2e-4}, "--lr 0.0001 vs 0.0002"),
    ({"loss": "infonce"}, "--loss kl vs infonce"),  # unset in the run: kl, from the teacher scores
    ({"topk_query": 5}, "--topk-query 0 vs 5"),
    ({"topk_doc": 7}, "--topk-doc 0 vs 7"),
    ({"max_steps": 6}, "--max-steps 4 vs 6"),  # the LR decay and the λ warm-up are fractions of it
    ({"seed": 4}, "--seed 3 vs 4"),
    ({"batch_size": 1}, "--batch-size 2 vs 1"),
    ({"negatives": 0}, "--negatives 1 vs 0"),
    ({"temperature": 50.0}, "--temperature 80.0 vs 50.0"),
    ({"max_length": 16}, "--max-length 32 vs 16"),
])
def test_a_changed_setting_is_refused_in_one_line_and_the_partial_is_untouched(unfinished, run_copy, capsys,
                                                                              change, shown):
    part = run_copy.with_name("run.partial")
    before = folder_digest(part)
    settings = {**unfinished["common"], **change, "output": str(run_copy)}
    rc, err = run_train(argv_of(settings) + ["--resume"], capsys)
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith("error: --resume: settings differ from the unfinished run's"), err[0]
    assert shown in err[0] and f"remove {part}" in err[0], err[0]
    assert folder_digest(part) == before and not run_copy.exists()
    assert not [p for p in run_copy.parent.iterdir() if p.name.startswith(".train-data-")]


def test_every_difference_is_named_once(unfinished, run_copy):
    from pyserini_splare.train.engine import train

    part = run_copy.with_name("run.partial")
    before = folder_digest(part)
    with pytest.raises(UsageError) as e:
        train(config(**{**unfinished["common"], "lr": 3e-4, "loss": "infonce", "topk_doc": 9},
                     output=str(run_copy), resume=True))
    msg = str(e.value)
    assert "\n" not in msg
    listed = msg.split("this command's): ", 1)[1].split(": resume with", 1)[0].split("; ")
    # τ left unset follows the loss: KL's 80, InfoNCE's 1 -- the run would be trained at another τ too
    assert sorted(listed) == sorted(["--lr 0.0001 vs 0.0003", "--loss kl vs infonce", "--temperature 80.0 vs 1.0",
                                     "--topk-doc 0 vs 9"]), msg
    assert folder_digest(part) == before


def test_other_training_data_is_refused_even_under_the_same_path(unfinished, run_copy):
    from pyserini_splare.train.engine import train

    part = run_copy.with_name("run.partial")
    before = folder_digest(part)
    regenerated = run_copy.parent / "train.jsonl"
    write_data(regenerated)
    with open(regenerated, "a", encoding="utf-8") as f:
        f.write(json.dumps({"query": "q", "pos": ["p"], "neg": ["n"], "pos_scores": [2.0], "neg_scores": [1.0]}) + "\n")
    with pytest.raises(UsageError, match=r"--train-data .*train\.jsonl \(sha256:[0-9a-f]{12}\.\.\.\) vs "):
        train(config(**{**unfinished["common"], "train_data": str(regenerated)}, output=str(run_copy), resume=True))
    assert folder_digest(part) == before


def test_a_missing_or_unreadable_train_config_is_one_line(unfinished, run_copy, capsys):
    part = run_copy.with_name("run.partial")
    argv = argv_of({**unfinished["common"], "output": str(run_copy)}) + ["--resume"]
    cfg = part / "train_config.json"
    for content, expected in ((None, "train_config.json is missing"), ("{not json", "cannot read"),
                              ("[1, 2]", "not a JSON object")):
        if content is None:
            cfg.unlink()
        else:
            cfg.write_text(content)
        before = folder_digest(part)
        rc, err = run_train(argv, capsys)
        assert rc == 2 and len(err) == 1 and expected in err[0] and f"remove {part}" in err[0], err
        assert folder_digest(part) == before


def test_a_record_without_identities_compares_settings_as_spelled(unfinished):
    """A train_config.json written before the identities were recorded: the paths are compared as given."""
    from pyserini_splare.train.engine import _check_resume

    new = json.loads((unfinished["partial"] / "train_config.json").read_text())
    old = {k: v for k, v in new.items() if k not in ("identity", "world_size")}
    _check_resume(unfinished["partial"], old, new)  # the same settings pass
    with pytest.raises(UsageError, match=r"--train-data \S+train\.jsonl vs elsewhere\.jsonl"):
        _check_resume(unfinished["partial"], old, {**new, "train_data": "elsewhere.jsonl"})
    ws = new["world_size"]  # 1 unless this test runs under torchrun
    with pytest.raises(UsageError, match=rf"WORLD_SIZE \(processes\) {ws} vs {ws + 7}"):
        _check_resume(unfinished["partial"], new, {**new, "world_size": ws + 7})
    # the run's own data file rewritten in place: the same path, other content
    other = {**new, "identity": {**new["identity"], "train_data": "sha256:" + "0" * 64}}
    same_path = r"--train-data (\S+) \(sha256:[0-9a-f]{12}\.\.\.\) vs \1 \(sha256:0{12}\.\.\.\)"
    with pytest.raises(UsageError, match=same_path):
        _check_resume(unfinished["partial"], new, other)


def test_allowed_changes_resume_and_equal_the_uninterrupted_run(unfinished, run_copy, tmp_path):
    """Checkpoint, log and dev cadence, the device, gradient checkpointing, the loss spelled out, the encoder through
    a symbolic link and the data copied elsewhere: the resumed run is the uninterrupted one."""
    from safetensors.torch import load_file

    from pyserini_splare.train.engine import train

    common = unfinished["common"]
    link = tmp_path / "tiny-link"
    os.symlink(common["encoder"].split(":", 1)[1], link)
    moved = tmp_path / "moved" / "train.jsonl"
    moved.parent.mkdir()
    shutil.copy(common["train_data"], moved)
    train(config(**{**common, "save_steps": 3, "log_every": 2, "dev_every": 5, "device": "cpu",
                    "grad_checkpointing": True, "save_total_limit": 1, "loss": "kl",
                    "encoder": f"splade:{link}", "train_data": str(moved)},
                 output=str(run_copy), resume=True))
    assert run_copy.is_dir() and not run_copy.with_name("run.partial").exists()

    def log(d):
        return {r["step"]: r for r in map(json.loads, (d / "train_log.jsonl").read_text().splitlines())}

    a, b = log(unfinished["full"]), log(run_copy)
    assert sorted(a) == sorted(b) == [1, 2, 3, 4]
    for step in (3, 4):
        assert b[step]["loss"] == pytest.approx(a[step]["loss"], abs=1e-6)
    wa, wb = load_file(str(unfinished["full"] / "model.safetensors")), load_file(str(run_copy / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=1e-6, rtol=0), k
    # the record now holds the resumed command's allowed settings
    saved = json.loads((run_copy / "train_config.json").read_text())
    assert saved["save_steps"] == 3 and saved["train_data"] == str(moved)
