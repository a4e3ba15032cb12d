"""BERT SPLADE (real SPLADE-tiny weights) and the encode CLI: reference pooling, pruning, shards, resume, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pyserini_splare.encode.__main__ import main
from pyserini_splare.vectors import iter_vectors, read_meta

TEXTS = [
    "Hello world: a tiny test of sparse retrieval.",
    "the cat sat on the mat",
    "Learned sparse representations such as SPLADE expand documents with related vocabulary terms, "
    "weighting each term by the maximum over tokens of log(1 + ReLU(logit)).",
    "x",
]


@pytest.fixture(scope="module")
def tiny(splade_tiny_path) -> Path:
    return splade_tiny_path


@pytest.fixture(scope="module")
def encoder(tiny):
    from pyserini_splare.encode.splade import load_splade

    return load_splade(str(tiny), batch_size=3)


def test_matches_hand_computed_reference(tiny, encoder):
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny), local_files_only=True)
    model = AutoModelForMaskedLM.from_pretrained(str(tiny), local_files_only=True).eval()
    batch = tok(TEXTS, padding=True, truncation=True, max_length=512, return_tensors="pt")
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    # SPLADE: w_j = max over real tokens i of log(1 + ReLU(logit_ij)); padding masked out.
    act = torch.log(1 + torch.relu(logits)) * batch["attention_mask"].unsqueeze(-1)
    ref = act.max(dim=1).values.numpy()

    vecs = encoder.encode(TEXTS, "doc")  # batch_size 3: two length-sorted batches, order restored
    assert len(vecs) == len(TEXTS)
    for v, r in zip(vecs, ref):
        np.testing.assert_allclose(v.to_dense(ref.shape[1]), r, atol=1e-5)
        assert v.nnz == int(np.count_nonzero(r))
    # Terms are WordPiece strings.
    terms = dict(zip(encoder.space.terms(vecs[1].ids), vecs[1].weights))
    assert "cat" in terms and "mat" in terms
    assert encoder.space.term(tok.convert_tokens_to_ids("##ing")) == "##ing"


def test_import_does_not_load_torch():
    code = "import pyserini_splare.encode, pyserini_splare.corpus, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def _corpus(path: Path, n: int, dup: bool = False) -> Path:
    words = "retrieval sparse neural model index query document vector term weight".split()
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            body = " ".join(words[(i + j) % len(words)] for j in range(1 + (i * 7) % 23))
            f.write(json.dumps({"id": f"d{i}", "title": f"doc {i}", "text": body}) + "\n")
        if dup:
            f.write(json.dumps({"id": "d3", "text": "again"}) + "\n")
    return path


def _vectors(d: Path) -> dict:
    return dict(iter_vectors(d))


@pytest.mark.slow
def test_cli_writes_vectors_dir_with_stats(tmp_path, tiny, encoder):
    corpus = _corpus(tmp_path / "c.jsonl", 12)
    out = tmp_path / "vec"
    assert main(["--corpus", str(corpus), "--encoder", f"splade:{tiny}", "--output", str(out),
                 "--batch-size", "4", "--part-size", "5", "--topk", "8"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "part-00000.jsonl", "part-00001.jsonl",
                                                     "part-00002.jsonl"]
    meta = read_meta(out)
    assert meta.quant_scale == 100 and meta.pooling["topk"] == 8 and meta.encoder["spec"] == f"splade:{tiny}"
    assert meta.space == encoder.space
    got = _vectors(out)
    assert list(got) == [f"d{i}" for i in range(12)]  # corpus order, despite length sorting
    # Independent reference: encode each text alone, keep the 8 largest, round(w * 100).
    from pyserini_splare.corpus import read_jsonl

    docs = list(read_jsonl(corpus))
    raw = [encoder.encode([d.text])[0] for d in docs]
    for d, v in zip(docs, raw):
        order = np.lexsort((v.ids, -v.weights))[:8]
        expect = {encoder.space.term(int(v.ids[i])): int(np.rint(v.weights[i] * 100)) for i in order}
        expect = {t: w for t, w in expect.items() if w > 0}
        assert got[d.id] == expect
    l0 = meta.stats["l0"]
    assert l0["before_pruning_mean"] == pytest.approx(np.mean([v.nnz for v in raw]))
    assert l0["after_pruning_mean"] == pytest.approx(np.mean([min(8, v.nnz) for v in raw]))
    assert meta.stats["documents"] == 12 and meta.stats["postings"] == sum(len(x) for x in got.values())


@pytest.mark.slow
def test_max_length_is_the_models_own_unless_given_and_then_recorded(tmp_path, tiny, encoder):
    """No --max-length: the model's document length (BERT: 512), nothing recorded as overridden; an explicit
    --max-length sets the document side only and meta.json's spec says so. The pooling is the encoder's."""
    corpus = _corpus(tmp_path / "c.jsonl", 6)
    plain, short = tmp_path / "plain", tmp_path / "short"
    assert main(["--corpus", str(corpus), "--encoder", f"splade:{tiny}", "--output", str(plain)]) == 0
    assert main(["--corpus", str(corpus), "--encoder", f"splade:{tiny}", "--output", str(short),
                 "--max-length", "6"]) == 0
    mp, ms = read_meta(plain), read_meta(short)
    assert (mp.encoder["max_length_query"], mp.encoder["max_length_doc"]) == (512, 512)
    assert "overrides" not in mp.encoder
    assert (ms.encoder["max_length_query"], ms.encoder["max_length_doc"]) == (512, 6)
    assert ms.encoder["overrides"] == {"max_length_doc": 6}
    assert mp.pooling["method"] == "max_log1p_relu" and mp.pooling["skip"] == "none"
    # Truncation to 6 tokens ([CLS] + 4 word pieces + [SEP]), checked against the tokenizer itself.
    from transformers import AutoTokenizer

    from pyserini_splare.corpus import read_jsonl

    tok = AutoTokenizer.from_pretrained(str(tiny))
    docs = list(read_jsonl(corpus))
    cut = [tok.decode(tok(d.text, truncation=True, max_length=6)["input_ids"][1:-1]) for d in docs]
    got = _vectors(short)
    for d, text in zip(docs, cut):
        v = encoder.encode([text])[0]
        expect = {encoder.space.term(int(i)): int(np.rint(w * 100)) for i, w in zip(v.ids, v.weights)}
        assert got[d.id] == {t: w for t, w in expect.items() if w > 0}


def test_splade_model_saves_a_checkpoint_that_loads_to_the_same_vectors(tmp_path, tiny, encoder):
    from pyserini_splare.encode import load_encoder

    encoder.save(tmp_path / "ckpt")
    again = load_encoder(str(tmp_path / "ckpt"))  # a *ForMaskedLM folder names its kind
    assert again.kind == "splade" and again.space == encoder.space
    texts = ["sparse retrieval with learned weights", "a", "query"]
    for a, b in zip(again.encode(texts), encoder.encode(texts)):
        np.testing.assert_array_equal(a.ids, b.ids)
        np.testing.assert_allclose(a.weights, b.weights, atol=1e-6)


@pytest.mark.slow
def test_prune_from_equals_pruning_at_encode_time(tmp_path, tiny):
    corpus = _corpus(tmp_path / "c.jsonl", 9)
    full, pruned, direct = tmp_path / "full", tmp_path / "pruned", tmp_path / "direct"
    base = ["--corpus", str(corpus), "--encoder", f"splade:{tiny}", "--batch-size", "4"]
    assert main(base + ["--output", str(full)]) == 0
    assert main(["--prune-from", str(full), "--topk", "5", "--output", str(pruned)]) == 0
    assert main(base + ["--output", str(direct), "--topk", "5"]) == 0
    # Quantized weights are multiples of 1/100, so ties can differ only where the quantized weights tie.
    a, b = _vectors(pruned), _vectors(direct)
    assert list(a) == list(b)
    for k in a:
        assert sorted(a[k].values()) == sorted(b[k].values())
    assert read_meta(pruned).pooling["topk"] == 5
    assert read_meta(pruned).stats["l0"]["after_pruning_mean"] == 5
    mass = tmp_path / "mass"
    assert main(["--prune-from", str(full), "--mass", "0.5", "--output", str(mass)]) == 0
    for k, v in _vectors(mass).items():
        w = sorted(_vectors(full)[k].values(), reverse=True)
        n = int(np.searchsorted(np.cumsum(w), 0.5 * sum(w) - 1e-9) + 1)  # fewest largest reaching half the mass
        assert len(v) == n


@pytest.mark.slow
def test_shards_partition_the_corpus(tmp_path, tiny):
    corpus = _corpus(tmp_path / "c.jsonl", 7)
    whole = tmp_path / "all"
    base = ["--corpus", str(corpus), "--encoder", f"splade:{tiny}", "--batch-size", "2"]
    assert main(base + ["--output", str(whole)]) == 0
    merged = {}
    for i in range(3):
        assert main(base + ["--output", str(tmp_path / f"s{i}"), "--shard-id", str(i), "--shard-num", "3"]) == 0
        part = _vectors(tmp_path / f"s{i}")
        assert list(part) == [f"d{j}" for j in range(i, 7, 3)]  # every 3rd document
        merged.update(part)
    assert merged == _vectors(whole)


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error: ")]
    assert len(errors) == 1 and err[-1] == errors[0] and not any("Traceback" in x for x in err), err
    return errors[0]


@pytest.mark.parametrize("case", ["unknown-kind", "dir-without-config", "empty-text", "non-utf8", "duplicate-id"])
def test_bad_input_exits_2_with_one_line(tmp_path, tiny, capsys, case):
    corpus = _corpus(tmp_path / "c.jsonl", 4)
    enc = f"splade:{tiny}"
    if case == "unknown-kind":
        enc, expect = f"bert:{tiny}", "unknown encoder kind 'bert'"
    elif case == "dir-without-config":
        (tmp_path / "ckpt").mkdir()
        (tmp_path / "ckpt" / "model.safetensors").write_bytes(b"")
        enc, expect = str(tmp_path / "ckpt"), "checkpoint directory has no config"
    elif case == "empty-text":
        with open(corpus, "a") as f:
            f.write('{"id": "e", "text": ""}\n')
        expect = f"{corpus}:5: document 'e' has empty text"
    elif case == "non-utf8":
        with open(corpus, "ab") as f:
            f.write(b'{"id": "e", "text": "\xff\xfe"}\n')
        expect = f"{corpus}:5: not valid UTF-8"
    else:
        corpus = _corpus(tmp_path / "d.jsonl", 5, dup=True)
        expect = f"{corpus}:6: duplicate document id 'd3' (first at {corpus}:4)"
    out = tmp_path / "out"
    rc = main(["--corpus", str(corpus), "--encoder", enc, "--output", str(out), "--part-size", "2"])
    assert rc == 2
    assert expect in _one_line_error(capsys)
    assert not out.exists() and not (tmp_path / "out.partial").exists()  # nothing half-written


def test_usage_errors(tmp_path, capsys):
    assert main(["--corpus", "x", "--encoder", "splade:y", "--output", str(tmp_path / "o"), "--shard-id", "3",
                 "--shard-num", "2"]) == 2
    assert "--shard-id" in _one_line_error(capsys)
    assert main(["--prune-from", str(tmp_path), "--output", str(tmp_path / "o")]) == 2
    assert "--topk" in _one_line_error(capsys)


def _run_cli(args, env=None):
    return subprocess.Popen([sys.executable, "-m", "pyserini_splare.encode", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_resume_after_sigkill_is_byte_identical(tmp_path, tiny):
    corpus = _corpus(tmp_path / "c.jsonl", 30)
    args = ["--corpus", str(corpus), "--encoder", f"splade:{tiny}", "--batch-size", "2", "--part-size", "6",
            "--topk", "20"]
    ref = tmp_path / "ref"
    assert main(args + ["--output", str(ref)]) == 0

    out = tmp_path / "out"
    env = {**os.environ, "PYSERINI_SPLARE_TEST_SLEEP": "0.2", "PYSERINI_SPLARE_PROGRESS": "0"}
    proc = _run_cli(args + ["--output", str(out)], env)
    state = tmp_path / "out.partial" / "_state"
    deadline = time.time() + 120
    while not (state / "part-00001.json").exists():  # two parts done, the third under way
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline, "encoder made no progress"
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    done = sorted(p.name for p in state.glob("part-*.json"))
    assert 2 <= len(done) < 5, done

    # A rerun with other settings is refused (the unfinished run is kept, not mixed in) ...
    assert main(args[:-1] + ["30", "--output", str(out)]) == 2
    assert (state / "part-00001.json").exists()
    # ... and the same command resumes.
    assert main(args + ["--output", str(out)]) == 0
    assert not (tmp_path / "out.partial").exists()
    names = sorted(p.name for p in ref.iterdir())
    assert names == sorted(p.name for p in out.iterdir())
    for name in names:
        assert (ref / name).read_bytes() == (out / name).read_bytes(), name
