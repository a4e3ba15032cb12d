"""The training commands' CLI contract (docs/errors.md), issue 21's cases: ``train`` and ``train.sae``.

Each bad input: exit 2, one ``error:`` line, no traceback, nothing at the output path (no folder, no ``.partial``,
no hidden temp folder). Checked before anything is created or a model loaded: a dev set whose qrels do not match
its topics, an unwritable ``--output``, ``--device cuda`` without CUDA, negative numbers in scientific notation.
And what the commands promise when they run: dev settings may change on ``--resume`` (the closing mean loss then
covers the whole run, computed here from the run's own per-step log); ``--overwrite``; a bar per dev evaluation
and a training bar whose clock leaves dev evaluations out; no sentence-transformers "widget examples" bar;
``train.sae``'s bar, its warning on a tiny corpus and its refusal of an empty one; every file both commands write
gets the umask's permissions (0666/0777 less the umask), not safetensors' 0600.

Training runs are tiny: SPLADE-tiny (real weights), 4 steps of batch 2 at 32 tokens; an SAE of 64 latents, 5 steps.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat
import time
from pathlib import Path

import pytest

import sentence_transformers  # noqa: F401  (a required dependency: imported, not skipped)
import torch

from pyserini_splare._errors import UsageError
from test_train_resume import TEXTS, Killed, kill_after_checkpoint  # noqa: E402  (tests/ is on sys.path)

UMASK = 0o002  # differs from both safetensors' 0600 and the usual 0644, so a file that ignores it shows
COMMON = ["--max-steps", "4", "--save-steps", "2", "--batch-size", "2", "--negatives", "1", "--max-length", "32",
          "--lr", "1e-4", "--seed", "3", "--log-every", "1", "--loss", "infonce"]


def error_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("error:") or ": error:" in ln]


def assert_one_error(rc: int, err: str, match: str) -> str:
    lines = error_lines(err)
    assert rc == 2, f"exit {rc}, stderr:\n{err}"
    assert len(lines) == 1 and "Traceback" not in err and "usage:" not in err, err
    assert match in lines[0], lines[0]
    return lines[0]


def nothing_at(out: Path) -> bool:
    return not out.exists() and not Path(str(out) + ".partial").exists() and \
        not any(p.name.startswith((".train-data-", f".{out.name}")) for p in out.parent.iterdir())


def call(module: str, argv) -> tuple[int, str]:
    """``main(argv)`` of ``pyserini_splare.MODULE`` with stderr captured (tqdm's bars included)."""
    import importlib

    main = importlib.import_module(f"pyserini_splare.{module}.__main__").main
    buf = io.StringIO()
    with contextlib.redirect_stderr(buf):
        rc = main([str(a) for a in argv])
    return rc, buf.getvalue()


def modes_follow_umask(root: Path, umask: int) -> list[str]:
    """Every file and folder under ``root`` (itself too) whose mode is not what open/mkdir give under ``umask``."""
    bad = []
    for p in [root, *root.rglob("*")]:
        want = (0o777 if p.is_dir() else 0o666) & ~umask
        if stat.S_IMODE(p.stat().st_mode) != want:
            bad.append(f"{p.relative_to(root.parent)} {oct(stat.S_IMODE(p.stat().st_mode))} != {oct(want)}")
    return bad


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Training rows, two dev sets (A, B) over one dev corpus, and qrels that match neither set's topics."""
    d = tmp_path_factory.mktemp("train-cli")
    rows = [{"query": q, "pos": [p], "neg": [n]} for q, p, n in TEXTS]
    (d / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with open(d / "dev.jsonl", "w") as f:
        for i, (_, p, n) in enumerate(TEXTS):
            f.write(json.dumps({"id": f"d{i}", "text": p}) + "\n" + json.dumps({"id": f"n{i}", "text": n}) + "\n")
    for name, idx in (("a", range(0, 4)), ("b", range(4, 8))):
        (d / f"dev_{name}.tsv").write_text("".join(f"q{i}\t{TEXTS[i][0]}\n" for i in idx))
        (d / f"qrels_{name}.txt").write_text("".join(f"q{i} 0 d{i} 1\n" for i in idx))
    (d / "qrels_other.txt").write_text("".join(f"x{i} 0 d{i} 1\n" for i in range(8)))
    (d / "empty.jsonl").write_text("")
    return d


def dev_flags(d: Path, name: str, qrels: str | None = None) -> list[str]:
    return ["--dev-topics", d / f"dev_{name}.tsv", "--dev-qrels", qrels or d / f"qrels_{name}.txt",
            "--dev-corpus", d / "dev.jsonl", "--dev-metrics", "RR@10"]


@pytest.fixture
def tiny_spec(tmp_path) -> str:
    """Resolves as a SPLADE spec but cannot be loaded: an error raised after loading would be another one."""
    m = tmp_path / "m"
    m.mkdir()
    (m / "config.json").write_text(json.dumps({"architectures": ["BertForMaskedLM"]}))
    return f"splade:{m}"


# ---- bad input to train: refused before anything is created ------------------------------------------------


@pytest.mark.parametrize("dev, match", [
    (lambda d: dev_flags(d, "a", d / "qrels_other.txt"), "shares no query id with --dev-topics"),
    (lambda d: dev_flags(d, "a", d / "no-qrels.txt"), "does not exist"),
    (lambda d: dev_flags(d, "a")[:5] + [d / "nowhere.jsonl", "--dev-metrics", "RR@10"], "does not exist"),
    (lambda d: dev_flags(d, "a")[:5] + [d / "empty.jsonl", "--dev-metrics", "RR@10"], "holds no documents"),
    (lambda d: dev_flags(d, "a")[:5] + [d / "train.jsonl", "--dev-metrics", "RR@10"], "missing 'id'"),
    (lambda d: dev_flags(d, "a")[:-1] + ["nDCG@ten"], "unknown metric"),
])
def test_a_bad_dev_set_is_refused_before_anything_is_created(data, tiny_spec, tmp_path, dev, match):
    out = tmp_path / "out"
    rc, err = call("train", ["--encoder", tiny_spec, "--train-data", data / "train.jsonl", "--output", out,
                             *COMMON, *dev(data)])
    assert_one_error(rc, err, match)
    assert nothing_at(out)


def test_a_dev_corpus_without_the_judged_documents_is_refused(data, tiny_spec, tmp_path):
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"id": "zz", "text": "nothing judged"}) + "\n")
    out = tmp_path / "out"
    rc, err = call("train", ["--encoder", tiny_spec, "--train-data", data / "train.jsonl", "--output", out,
                             *dev_flags(data, "a")[:5], other])
    assert_one_error(rc, err, "holds none of the 4 documents")
    assert nothing_at(out)


@pytest.mark.parametrize("argv, match", [
    (["--lr", "-1e-4"], "--lr must be positive, got -0.0001"),  # argparse alone: "expected one argument" + usage
    (["--flops-doc", "-1.5E-3"], "--flops-doc must be >= 0, got -0.0015"),
    (["--lr", "abc"], "argument --lr: invalid float value: 'abc'"),
    (["--batch-size", "2.5"], "argument --batch-size: invalid int value: '2.5'"),
    (["--no-such-flag", "1"], "unrecognized arguments: --no-such-flag 1"),
    (["--device", "gpu"], "--device must be auto, cpu, cuda or cuda:N, got 'gpu'"),
    (["--warmup-ratio", "1.5"], "--warmup-ratio must be in [0, 1], got 1.5"),  # the fields' declared rules
    (["--tune", "half"], "--tune must be one of auto, full, lora, got 'half'"),
    (["--temperature", "0"], "--temperature must be positive, got 0.0"),
])
def test_bad_flags_are_one_line(data, tiny_spec, tmp_path, argv, match):
    out = tmp_path / "out"
    rc, err = call("train", ["--encoder", tiny_spec, "--train-data", data / "train.jsonl", "--output", out, *argv])
    assert_one_error(rc, err, match)
    assert nothing_at(out)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("module", ["train", "train.sae"])
def test_device_cuda_without_cuda_is_one_line(data, tiny_spec, splade_tiny_path, tmp_path, module):
    out = tmp_path / "out"
    argv = ["--encoder", tiny_spec, "--train-data", data / "train.jsonl"] if module == "train" else \
        ["--backbone", splade_tiny_path, "--layer", "1", "--corpus", data / "dev.jsonl"]
    rc, err = call(module, [*argv, "--output", out, "--device", "cuda"])
    assert_one_error(rc, err, "--device cuda: CUDA is not available here")
    assert nothing_at(out)


def test_an_unwritable_output_folder_is_named_before_the_model_loads(data, tmp_path, splade_tiny_path, monkeypatch):
    """The parent of --output is read-only (0555). As root, access(2) grants writing anyway, so there the check
    is shown the mode bits a non-root user would be judged by. Loading a model is an error in this test."""
    import pyserini_splare.encode as encode
    import pyserini_splare._outputs as cli

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() == 0:
        real = os.access
        monkeypatch.setattr(cli.os, "access", lambda p, m: real(p, m) and not (
            m & os.W_OK and Path(p).is_dir() and not Path(p).stat().st_mode & stat.S_IWUSR))

    def no_load(*a, **k):
        raise AssertionError("the model was loaded before the output was checked")

    monkeypatch.setattr(encode, "load_encoder", no_load)
    try:
        rc, err = call("train", ["--encoder", f"splade:{splade_tiny_path}", "--train-data", data / "train.jsonl",
                                 "--output", ro / "model", *COMMON])
        line = assert_one_error(rc, err, f"cannot write in {ro}")
        assert ".train-data-" not in line and os.listdir(ro) == []
    finally:
        ro.chmod(0o755)


def test_existing_outputs_name_overwrite_and_resume(data, tiny_spec, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    rc, err = call("train", ["--encoder", tiny_spec, "--train-data", data / "train.jsonl", "--output", out])
    assert_one_error(rc, err, f"{out} already exists (remove it or pass --overwrite)")
    part = tmp_path / "other.partial"
    part.mkdir()
    rc, err = call("train", ["--encoder", tiny_spec, "--train-data", data / "train.jsonl",
                             "--output", tmp_path / "other"])
    assert_one_error(rc, err, "pass --resume to continue it, --overwrite to start over, or remove it")
    assert os.listdir(out) == [] and os.listdir(part) == []


def test_recipes_are_defaults_that_flags_override(tmp_path):
    """HfArgumentParser over TrainConfig: recipe < flags; a recipe's YAML string '5e-5' is a number; a value of
    the wrong type is one line naming the setting; the CLI and make_config (the programmatic path) agree."""
    from pyserini_splare.train.__main__ import build_parser
    from pyserini_splare.train.config import make_config, parse_config

    r = tmp_path / "r.yaml"
    r.write_text("lr: 5e-5\nbatch_size: 4\ngrad_checkpointing: true\nlora_targets: [q, v]\n")
    cfg = parse_config(build_parser(), ["--recipe", str(r), "--batch-size", "8", "--grad-checkpointing", "false"])
    assert (cfg.lr, cfg.batch_size, cfg.grad_checkpointing, cfg.lora_targets) == (5e-5, 8, False, ["q", "v"])
    assert cfg == make_config({"recipe": str(r), "batch_size": 8, "grad_checkpointing": False})[0]
    shipped = parse_config(build_parser(), ["--recipe", "splade-tiny-cpu", "--lr", "1e-3"])
    assert (shipped.loss, shipped.negatives, shipped.lr) == ("infonce", 4, 1e-3)
    r.write_text("batch_size: many\n")
    with pytest.raises(UsageError, match=r"r\.yaml: batch_size must be int, got 'many'"):
        parse_config(build_parser(), ["--recipe", str(r)])


def test_help_shows_each_flag_once_with_its_default():
    from pyserini_splare.train.__main__ import build_parser

    text = build_parser().format_help()
    assert "--train_data" not in text and text.count("--train-data TRAIN_DATA") == 2  # usage and options
    flat = " ".join(text.split())
    assert "--resume [" not in flat and "linear decay) (default 5e-05)" in flat and "(default 0) --dev-metrics" in flat
    assert "--overwrite replace an existing OUTPUT" in flat


@pytest.mark.parametrize("module", ["train", "train.sae", "train.data"])
def test_help_imports_no_torch(module):
    """HfArgumentParser brings transformers' argument module in (not torch) for --help."""
    import subprocess
    import sys

    probe = (f"import runpy, sys; sys.argv = ['prog', '--help']\n"
             f"try:\n    runpy.run_module('pyserini_splare.{module}', run_name='__main__')\n"
             "except SystemExit as e:\n    assert not e.code\n"
             "print('HEAVY=' + ','.join(m for m in ('torch', 'sentence_transformers', 'datasets') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.rstrip().endswith("HEAVY=") and "example" in r.stdout, r.stdout[-300:]


# ---- train runs: the corrected rerun, a resume with another dev set, --overwrite, bars, file modes -------------


@pytest.fixture(scope="module")
def runs(data, splade_tiny_path, tmp_path_factory):
    """Under umask 0o002 and with bars on: (1) a run with a bad dev set (refused), then the corrected command, over
    an existing OUT and a stale OUT.partial with --overwrite; (2) the same run killed after its step-2 checkpoint
    and resumed with dev set B. Bars are recorded (their clocks) and every dev evaluation is slowed by 2 s."""
    import pyserini_splare.train.dev_eval as dev_eval
    import pyserini_splare.train.engine as engine
    from pyserini_splare.train.__main__ import build_parser
    from pyserini_splare.train.config import parse_config

    d = tmp_path_factory.mktemp("runs")
    argv = ["--encoder", f"splade:{splade_tiny_path}", "--train-data", data / "train.jsonl", *COMMON,
            "--dev-every", "2"]
    bars, devs = [], []
    real_progress, real_eval = engine.progress, dev_eval.evaluate_model

    def recorded_progress(*a, **k):
        bar = real_progress(*a, **k)
        bars.append({"desc": k.get("desc"), "bar": bar, "opened": time.monotonic()})
        close = bar.close

        def closing():  # the bar's own clock when it closes (format_dict's elapsed runs on after close)
            entry = next(b for b in bars if b["bar"] is bar)
            entry.update(closed=time.monotonic(), elapsed=bar.format_dict["elapsed"])
            close()

        bar.close = closing
        return bar

    def slow_eval(*a, **k):
        t0 = time.monotonic()
        time.sleep(2.0)
        res = real_eval(*a, **k)
        devs.append({"desc": k.get("desc"), "start": t0, "end": time.monotonic()})
        return res

    result = {"dir": d}
    old = os.umask(UMASK)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("PYSERINI_SPLARE_PROGRESS", "1")
            mp.setattr(engine, "progress", recorded_progress)
            mp.setattr(dev_eval, "evaluate_model", slow_eval)
            full = d / "full"
            result["bad"] = call("train", [*argv, "--output", full, *dev_flags(data, "a", data / "qrels_other.txt")])
            result["after_bad"] = sorted(os.listdir(d))
            full.mkdir()
            (full / "old.txt").write_text("replaced by --overwrite")
            (d / "full.partial").mkdir()  # a stale unfinished run: --overwrite starts over
            result["full"] = call("train", [*argv, "--output", full, *dev_flags(data, "a"), "--overwrite"])
            result["bars"], result["devs"] = list(bars), list(devs)
            run = d / "run"
            with contextlib.redirect_stderr(io.StringIO()), pytest.raises(Killed):
                engine.train(parse_config(build_parser(), [str(a) for a in [*argv, "--output", run,
                                                                             *dev_flags(data, "a")]]),
                             callbacks=[kill_after_checkpoint(2)])
            result["partial_modes"] = modes_follow_umask(d / "run.partial", UMASK)
            result["resumed"] = call("train", [*argv, "--output", run, *dev_flags(data, "b"), "--resume"])
    finally:
        os.umask(old)
    return result


def log_rows(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]


@pytest.mark.train
def test_the_corrected_rerun_after_a_bad_dev_set_runs(runs):
    rc, err = runs["bad"]
    assert_one_error(rc, err, "shares no query id with --dev-topics")
    assert runs["after_bad"] == []  # no OUT.partial, so the corrected command is not told to --resume
    rc, err = runs["full"]
    assert rc == 0, err
    out = runs["dir"] / "full"
    assert [r["step"] for r in log_rows(out)] == [1, 2, 3, 4]
    assert not (out / "old.txt").exists() and not Path(str(out) + ".partial").exists()  # --overwrite
    rows = [json.loads(x) for x in (out / "dev" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 2, 4] and rows[-1]["final"]


@pytest.mark.train
def test_dev_evaluations_have_their_own_bars_and_the_training_clock_leaves_them_out(runs):
    rc, err = runs["full"]
    assert "Computing widget examples" not in err
    for desc in ("dev (step 0)", "dev (step 2)", "dev (final)", "train"):
        assert desc in err, desc
    (train_bar,) = [b for b in runs["bars"] if b["desc"] == "train"]
    first, mid = runs["devs"][0], runs["devs"][1]
    assert first["desc"] == "dev (step 0)" and mid["desc"] == "dev (step 2)"
    # the training bar opens after the evaluation before training, and its clock excludes the one between steps
    assert train_bar["opened"] >= first["end"]
    open_s = train_bar["closed"] - train_bar["opened"]
    assert train_bar["opened"] <= mid["start"] and mid["end"] <= train_bar["closed"]
    elapsed = train_bar["elapsed"]
    assert elapsed <= open_s - (mid["end"] - mid["start"]) + 0.1, (elapsed, open_s, mid)
    assert train_bar["bar"].n == 4


@pytest.mark.train
def test_a_resume_may_change_the_dev_set_and_its_mean_loss_covers_the_whole_run(runs):
    rc, err = runs["resumed"]
    assert rc == 0, err
    out, full = runs["dir"] / "run", runs["dir"] / "full"
    assert "note: the dev set differs from the unfinished run's" in err and "dev_b.tsv" in err
    # the closing line's mean: every step of the run, 1-4, equal to the uninterrupted run's (the resumed run is
    # the same run: tests/test_train_resume.py); computed here from the uninterrupted run's own log
    want = sum(r["loss"] for r in log_rows(full)) / 4
    (line,) = [ln for ln in err.splitlines() if ln.startswith("trained ")]
    assert "over steps 1-4, resumed at step 2" in line, line
    assert float(line.split("mean loss ")[1].split()[0]) == pytest.approx(want, abs=1e-4)
    rows = [json.loads(x) for x in (out / "dev" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 2, 4]  # step 0 on dev set A, the final row on B


@pytest.mark.train
def test_every_file_train_writes_follows_the_umask(runs):
    assert runs["partial_modes"] == []  # checkpoints of an interrupted run included
    for name in ("full", "run"):
        out = runs["dir"] / name
        assert (out / "model.safetensors").is_file() and (out / "dev" / "final" / "vectors").is_dir()
        assert modes_follow_umask(out, UMASK) == []


# ---- train.sae --------------------------------------------------------------------------------------------------


def sae_argv(backbone, corpus, out, *extra):
    return ["--backbone", backbone, "--layer", "1", "--corpus", corpus, "--latents", "64", "--k", "4",
            "--steps", "5", "--max-length", "32", "--output", out, *extra]


@pytest.mark.parametrize("corpus, extra, match", [
    ("empty.jsonl", [], "holds no documents"),
    ("nowhere.jsonl", [], "does not exist"),
    ("dev.jsonl", ["--layer", "7"], "layer 7 is beyond the model's depth"),
    ("dev.jsonl", ["--lr", "-1e-3"], "--lr must be positive, got -0.001"),
    ("dev.jsonl", ["--k", "65"], "need 0 < --k <= --latents"),
    ("dev.jsonl", ["--layer", "-1"], "--layer must be >= 0, got -1"),
    ("dev.jsonl", ["--max-tokens", "0"], "--max-tokens must be positive, got 0"),
    ("dev.jsonl", ["--attention", "sideways"], "argument --attention: invalid choice"),
])
def test_train_sae_bad_input_is_one_line(data, splade_tiny_path, tmp_path, corpus, extra, match):
    out = tmp_path / "sae"
    rc, err = call("train.sae", sae_argv(splade_tiny_path, data / corpus, out, *extra))
    assert_one_error(rc, err, match)
    assert nothing_at(out)


@pytest.mark.train
def test_train_sae_bar_small_corpus_warning_overwrite_and_modes(data, splade_tiny_path, tmp_path, monkeypatch):
    monkeypatch.setenv("PYSERINI_SPLARE_PROGRESS", "1")
    three = tmp_path / "three.jsonl"
    three.write_text("".join(json.dumps({"id": f"t{i}", "text": TEXTS[i][1]}) + "\n" for i in range(3)))
    out = tmp_path / "sae"
    old = os.umask(UMASK)
    try:
        rc, err = call("train.sae", sae_argv(splade_tiny_path, three, out))
        assert rc == 0, err
        # (a line of its own on a terminal; a StringIO keeps the closed activations bar's escape codes before it)
        warnings = [ln[ln.index("warning:"):] for ln in err.splitlines() if "warning:" in ln]
        assert len(warnings) == 1 and "from 3 texts for 64 latents" in warnings[0], err
        assert "SAE" in err and "5/5" in err and "fvu_dev=" in err  # the bar: steps and held-out FVU
        assert modes_follow_umask(out, UMASK) == []
        (out / "mine.txt").write_text("x")
        rc, err = call("train.sae", sae_argv(splade_tiny_path, three, out))
        assert_one_error(rc, err, "already exists (remove it or pass --overwrite)")
        assert (out / "mine.txt").exists()
        rc, err = call("train.sae", sae_argv(splade_tiny_path, three, out, "--overwrite"))
        assert rc == 0, err
        assert not (out / "mine.txt").exists() and (out / "sae" / "sae.safetensors").is_file()
        assert modes_follow_umask(out, UMASK) == []
    finally:
        os.umask(old)
    report = json.loads((out / "sae_training.json").read_text())
    assert report["tokens"] + report["dev_tokens"] < 10 * 64  # the corpus the warning was about


# ---- train.data ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv, match", [
    ([], "the following arguments are required: --queries, --corpus, --index, --output"),
    (["--queries", "q", "--corpus", "c", "--index", "i"], "one of the arguments --qrels --positives is required"),
    (["--queries", "q", "--corpus", "c", "--index", "i", "--qrels", "r", "--positives", "p"],
     "argument --positives: not allowed with argument --qrels"),
    (["--queries", "q", "--corpus", "c", "--index", "i", "--qrels", "r", "--depth", "x"],
     "argument --depth: invalid int value: 'x'"),
])
def test_train_data_bad_flags_are_one_line(tmp_path, argv, match):
    """HfArgumentParser over MiningSettings keeps argparse's words, the mutually exclusive pair's included."""
    out = tmp_path / "train.jsonl"
    rc, err = call("train.data", [*argv, "--output", out] if argv else argv)
    assert_one_error(rc, err, match)
    assert nothing_at(out)


@pytest.mark.jvm
def test_the_mined_training_file_follows_the_umask(data, tmp_path):
    """The third training command: its JSONL (atomic_file) gets 0666 less the umask, like train's and train.sae's."""
    from pyserini_splare.index.backends import build_index

    corpus = tmp_path / "corpus"  # BM25 (Anserini's JsonCollection) indexes a folder of {"id", "contents"} lines
    corpus.mkdir()
    (corpus / "docs.jsonl").write_text("".join(
        json.dumps({"id": r["id"], "contents": r["text"]}) + "\n"
        for r in map(json.loads, (data / "dev.jsonl").read_text().splitlines())))
    build_index("bm25", [str(corpus)], str(tmp_path / "bm25"))
    (tmp_path / "pairs.tsv").write_text("".join(f"q{i} d{i}\n" for i in range(4)))
    out = tmp_path / "mined.jsonl"
    old = os.umask(UMASK)
    try:
        rc, err = call("train.data", ["--queries", data / "dev_a.tsv", "--corpus", corpus, "--positives",
                                      tmp_path / "pairs.tsv", "--index", tmp_path / "bm25", "--negatives", "1",
                                      "--depth", "10", "--output", out])
    finally:
        os.umask(old)
    assert rc == 0, err
    assert out.read_text().strip()  # queries whose BM25 hits include a non-positive are kept
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~UMASK
