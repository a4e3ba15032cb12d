"""Issue 21's error-contract cases (docs/errors.md), in tests/test_cli_contract.py's style.

Each case asserts the exit status, one ``error:`` line and no traceback, and that nothing appeared at
the output path. The encode cases that must prove "nothing was downloaded" run as subprocesses: the
ir_datasets and Hugging Face settings (home folders, proxies, offline switches) are read when those
libraries are imported, so they are set in a fresh interpreter; the network is made unreachable by a
proxy on a closed local port, the same with or without internet.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from test_cli_contract import assert_one_error, cli, listing

REPO = Path(__file__).resolve().parents[1]
DEMO_CORPUS = REPO / "pyserini_splare" / "demo" / "data" / "corpus.jsonl"
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens, a connection is refused at once


def _isolated_env(tmp_path: Path, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and not k.startswith("HF_")}
    env.update({"PYTHONPATH": str(REPO), "IR_DATASETS_HOME": str(tmp_path / "irds"), "HF_HOME": str(tmp_path / "hf"),
                "HTTP_PROXY": CLOSED, "HTTPS_PROXY": CLOSED, "http_proxy": CLOSED, "https_proxy": CLOSED,
                "PYSERINI_SPLARE_PROGRESS": "0"})
    env.update(extra)
    return env


def encode_subprocess(tmp_path: Path, *args, **env) -> tuple[int, str]:
    p = subprocess.run([sys.executable, "-m", "pyserini_splare.encode", *map(str, args)], cwd=tmp_path,
                       env=_isolated_env(tmp_path, **env), capture_output=True, text=True, timeout=300)
    return p.returncode, p.stderr


def downloaded(tmp_path: Path) -> list[Path]:
    """Files ir_datasets or the hub client wrote (importing ir_datasets makes empty folders only)."""
    return [p for root in ("irds", "hf") for p in (tmp_path / root).rglob("*") if p.is_file()]


# --------------------------------------------------------------------------------------------
# 21.1: encode checks the model and the corpus before any download or model load
# --------------------------------------------------------------------------------------------


def test_missing_splare_checkpoint_fails_before_the_corpus_download(tmp_path):
    rc, err = encode_subprocess(tmp_path, "--corpus", "irds:vaswani", "--encoder", "splare:models/nosuch",
                                "--output", "out")
    line = assert_one_error(rc, err, match="models/nosuch")
    assert "splare_config.json" in line, line
    assert "download" not in err.lower(), err  # ir_datasets never started
    assert downloaded(tmp_path) == [] and not (tmp_path / "out").exists()
    assert not (tmp_path / "out.partial").exists()


@pytest.mark.parametrize("case", ["offline", "unreachable"])
def test_uncached_hub_model_fails_before_the_corpus_download(tmp_path, case):
    env = {"HF_HUB_OFFLINE": "1"} if case == "offline" else {"HF_ENDPOINT": CLOSED}
    rc, err = encode_subprocess(tmp_path, "--corpus", "irds:vaswani", "--encoder", "splade:nosuch-org/nosuch-model",
                                "--output", "out", **env)
    line = assert_one_error(rc, err, match="nosuch-org/nosuch-model")
    assert ("HF_HUB_OFFLINE" if case == "offline" else "cannot be reached") in line, line
    assert downloaded(tmp_path) == [] and listing(tmp_path) <= {"irds", "hf"}


def test_failed_ir_datasets_download_is_one_line(tmp_path, splade_tiny_path):
    rc, err = encode_subprocess(tmp_path, "--corpus", "irds:vaswani", "--encoder", f"splade:{splade_tiny_path}",
                                "--output", "out")
    line = assert_one_error(rc, err, match="ir_datasets 'vaswani': download failed")
    assert "Connection refused" in line, line
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def _hf_folder(d: Path) -> Path:
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"architectures": ["BertForMaskedLM"]}))
    (d / "model.safetensors").write_bytes(b"")
    return d


@pytest.mark.parametrize("case", ["no config", "missing SAE", "missing backbone", "missing LoRA",
                                  "MLM without weights", "MILCO without weights", "unknown ir_datasets id"])
def test_encoder_and_corpus_layouts_checked_in_process(capsys, tmp_path, case):
    ckpt = tmp_path / "ckpt"
    spec = f"splare:{ckpt}"
    corpus = DEMO_CORPUS
    if case == "MLM without weights":
        _hf_folder(ckpt)
        (ckpt / "model.safetensors").unlink()
        spec, expect = f"splade:{ckpt}", "holds no weights"
    elif case == "MILCO without weights":
        _hf_folder(ckpt)
        (ckpt / "model.safetensors").unlink()
        spec, expect = f"milco:{ckpt}", "no model.safetensors"
    elif case == "unknown ir_datasets id":
        _hf_folder(ckpt)
        spec, corpus, expect = f"splade:{ckpt}", "irds:vaswani/no-such-part", "neither a file nor a known ir_datasets id"
    else:
        ckpt.mkdir()
        expect = "no splare_config.json"
        if case != "no config":
            backbone = _hf_folder(tmp_path / "backbone") if case != "missing backbone" else tmp_path / "gone"
            (ckpt / "sae").mkdir()
            cfg = {"backbone": str(backbone), "layer": 1, "sae": {"path": "sae" if case != "missing SAE" else "nosae"}}
            if case == "missing LoRA":
                cfg["lora"] = str(tmp_path / "no-lora")
            (ckpt / "splare_config.json").write_text(json.dumps(cfg))
            expect = {"missing SAE": "SAE nosae does not exist", "missing backbone": "backbone",
                      "missing LoRA": "LoRA adapter"}[case]
    out = tmp_path / "out"
    rc, _, err = cli(capsys, "encode", "--corpus", corpus, "--encoder", spec, "--output", out)
    assert_one_error(rc, err, match=expect)
    assert not out.exists() and not (tmp_path / "out.partial").exists()


def test_repro_without_a_model_refuses_before_any_step(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the matrix's default splare_model is the relative models/splare-7b
    work = tmp_path / "work"
    rc, _, err = cli(capsys, "repro", "wsdm26", "--condition", "run1", "--work-dir", work)
    line = assert_one_error(rc, err, match="condition splare-7b, step 1 (encode)")
    assert "--set splare_model=" in line, line
    assert listing(tmp_path) == set()  # no work folder, no download, no results file


# --------------------------------------------------------------------------------------------
# 21.9: eval refuses a run of another collection
# --------------------------------------------------------------------------------------------


@pytest.fixture
def cross(tmp_path):
    (tmp_path / "qrels.txt").write_text("".join(f"{q} 0 doc-{q}-{j} {j % 2}\n" for q in range(1, 4) for j in range(4)))
    # same query ids, documents of another collection (CACM-style ids)
    (tmp_path / "run.txt").write_text("".join(f"{q} Q0 CACM-{j:04d} {j + 1} {10 - j} bm25\n"
                                              for q in range(1, 4) for j in range(5)))
    return tmp_path


def test_eval_run_sharing_no_document_is_refused(capsys, cross):
    rc, out, err = cli(capsys, "eval", "--qrels", cross / "qrels.txt", "--run", cross / "run.txt", "--metrics", "AP")
    line = assert_one_error(rc, err, match="no document id")
    assert "--allow-disjoint" in line and "CACM-0000" in line, line
    assert out == ""


def test_eval_allow_disjoint_scores_zero(capsys, cross):
    rc, out, err = cli(capsys, "eval", "--qrels", cross / "qrels.txt", "--run", cross / "run.txt", "--metrics", "AP",
                       "nDCG@10", "--allow-disjoint")
    assert rc == 0, err
    # no judged document retrieved: AP and nDCG are 0 for every query by their definitions
    assert out.splitlines() == ["AP\tall\t0.0000", "nDCG@10\tall\t0.0000"]


def test_eval_no_shared_query_names_the_flag(capsys, cross):
    (cross / "other.txt").write_text("q9 Q0 doc-1-1 1 1.0 x\n")
    rc, _, err = cli(capsys, "eval", "--qrels", cross / "qrels.txt", "--run", cross / "other.txt")
    assert_one_error(rc, err, match="no query id")
    rc, out, err = cli(capsys, "eval", "--qrels", cross / "qrels.txt", "--run", cross / "other.txt", "--metrics", "AP",
                       "--allow-disjoint")
    assert rc == 0 and out.strip() == "AP\tall\t0.0000", err


# --------------------------------------------------------------------------------------------
# 21, small ones
# --------------------------------------------------------------------------------------------


def test_truncated_json_line_names_its_column(tmp_path):
    line = '{"id": "d1", "text": "a document cut in the midd'
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"id": "d0", "text": "fine"}) + "\n" + line + "\n")
    from pyserini_splare._errors import UsageError
    from pyserini_splare.corpus import open_corpus

    with pytest.raises(UsageError) as e:
        list(open_corpus(str(corpus)))
    msg = str(e.value)
    # the unterminated string opens at the quote before "a document" (1-based column)
    assert msg.startswith(f"{corpus}:2: malformed JSON"), msg
    column = line.index('"a document') + 1
    assert f"column {column}" in msg and "truncated" in msg, msg
    assert "column 1)" not in msg


def test_truncated_json_line_through_encode(capsys, tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "d1", "text":\n')
    ckpt = _hf_folder(tmp_path / "m")
    rc, _, err = cli(capsys, "encode", "--corpus", corpus, "--encoder", f"splade:{ckpt}", "--output", tmp_path / "v")
    line = assert_one_error(rc, err, match=f"{corpus}:1: malformed JSON")
    assert "after 20 characters" in line and "truncated" in line, line
    assert listing(tmp_path) == {"c.jsonl", "m"}


def test_repro_console_prints_no_nan(capsys, tmp_path, cross):
    run = tmp_path / "good.txt"
    run.write_text("".join(f"{q} Q0 doc-{q}-{j} {j + 1} {10 - j} x\n" for q in range(1, 4) for j in range(4)))
    (tmp_path / "m.yaml").write_text(f"""
name: t
topics: unused
qrels: {cross / 'qrels.txt'}
metrics: [AP, P@2]
defaults: {{work: {tmp_path / 'work'}}}
conditions:
  - name: ext
    output: {run}
    steps: []
    metrics: [AP, P@2]
    scores: {{AP: 0.5}}
""")
    rc, out, err = cli(capsys, "repro", str(tmp_path / "m.yaml"), "--condition", "ext")
    assert "nan" not in (out + err).lower(), out + err
    import ir_measures

    qrels = list(ir_measures.read_trec_qrels(str(cross / "qrels.txt")))
    got = ir_measures.calc_aggregate([ir_measures.AP], qrels, list(ir_measures.read_trec_run(str(run))))
    assert f"AP {got[ir_measures.AP]:.4f} (expected 0.5000)" in err, err
    assert re.search(r"P@2 \d\.\d{4}(,|$|\n)", err), err  # no expected score: the measurement alone


def test_cacm_qrels_match_the_collection(capsys, shared_data):
    from pyserini_splare.topics import get_qrels

    raw = (shared_data / "cacm" / "qrels.cacm.txt").read_text().split("\n")
    unpadded = [ln for ln in raw if re.search(r"\sCACM-\d{1,3}\s", ln)]
    with tarfile.open(shared_data / "cacm" / "cacm.tar.gz") as tf:
        members = {Path(m.name).name.rsplit(".", 1)[0] for m in tf if m.isfile()}
    qrels = get_qrels("cacm", str(shared_data)).judgments
    notices = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("notice:")]
    assert len(notices) == 1 and f"{len(unpadded)} judgments" in notices[0], notices
    assert len(unpadded) == 55
    assert {d for docs in qrels.values() for d in docs} <= members  # every judgment names a real document
    assert sum(len(d) for d in qrels.values()) == len([ln for ln in raw if ln.strip()])
    # as published: the same file, ids untouched, no notice
    as_published = get_qrels("cacm-anserini", str(shared_data)).judgments
    assert sum(d.startswith("CACM-") and len(d) < 9 for docs in as_published.values() for d in docs) == 55
    assert capsys.readouterr().err == ""


def test_quantization_summary_states_the_bound(tmp_path):
    from pyserini_splare.formats.quant import QuantStats, quant_summary, quantize_vector
    from pyserini_splare.vectors import SparseVector

    rng = np.random.default_rng(3)
    w = np.concatenate([rng.uniform(0, 0.02, 500), rng.uniform(0.02, 3, 500)]).astype(np.float32)
    stats = QuantStats(100.0)
    quantize_vector(SparseVector(np.arange(w.size), w), 100.0, stats)
    # brute force: round to the nearest hundredth; zeros are the weights under half a quantum
    q = np.rint(w.astype(np.float64) * 100)
    kept = q > 0
    assert np.all(np.abs(q[kept] / 100 - w[kept]) <= 0.005 + 1e-9)
    text = quant_summary(stats.to_meta())
    assert f"{w.size:,} weights" in text and "within half a quantum (0.005)" in text
    assert f"{int((~kept).sum()):,} ({100 * (~kept).mean():.3f}%) below half a quantum" in text
    assert "max relative error" not in text
    rel = np.abs(q[kept] / 100 - w[kept]) / w[kept]
    assert f"{100 * rel.mean():.2f}% off on average" in text


@pytest.mark.parametrize("path", ["models/splare-7b/x", "ckpt/splare-7b-init/x", "cacm/train.jsonl", "train.jsonl",
                                  "splade-tiny-cacm/model.safetensors", "splare-tiny/sae.safetensors",
                                  "splare-tiny-cacm.partial/x", "vectors/v.partial/part-00000.jsonl"])
def test_training_guide_outputs_are_ignored(path):
    p = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO, capture_output=True)
    if p.returncode == 128:
        pytest.skip("not a git checkout")
    assert p.returncode == 0, f"{path} is not ignored by .gitignore"
