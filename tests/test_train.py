"""Training on CPU with real weights and real text: SPLADE-tiny and a small SPLARE on CACM's title -> abstract pairs.

Short versions of the worked example (scripts/train_cacm.py has the long run and the numbers reported in
docs/training.md): the held-out fifth's titles search their abstracts, and MRR@10 (ir_measures' RR@10, through
the toolkit's own encode -> exact index -> search -> eval) must rise. Also: resuming equals an uninterrupted
run, the SAE of a SPLARE stays bit-identical, and the output directory is an encoder spec whose vectors are
the ones the trainer's evaluation saw.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import sentence_transformers  # noqa: E402,F401  (a required dependency: imported, not skipped)
import torch  # noqa: E402

pytestmark = [pytest.mark.train, pytest.mark.jvm]


@pytest.fixture(scope="module")
def cacm_train(shared_data, tmp_path_factory):
    """CACM split (a fifth held out), BM25 over the abstracts, training data mined with the toolkit, and a dev
    corpus of the held-out abstracts (the long run searches all 1,578; the test keeps encoding short)."""
    from pyserini_splare.testing import cacm_pairs as mod

    out = tmp_path_factory.mktemp("cacm-train")
    mod.write_split(shared_data / "cacm" / "cacm.tar.gz", out, overwrite=True)
    from pyserini_splare.index.backends import build_index
    from pyserini_splare.train.mining import mine, read_positives
    from pyserini_splare.topics import get_topics

    build_index("bm25", [str(out / "corpus")], str(out / "bm25"))
    mine(get_topics(str(out / "train_queries.tsv")), read_positives(out / "train_pairs.tsv"), str(out / "corpus"),
         str(out / "bm25"), str(out / "train.jsonl"), negatives=8, depth=50)
    held = {ln.split("\t")[0] for ln in (out / "heldout_queries.tsv").read_text().splitlines()}
    (out / "dev").mkdir()
    with open(out / "dev" / "abstracts.jsonl", "w") as f:
        for ln in (out / "corpus" / "abstracts.jsonl").read_text().splitlines():
            if json.loads(ln)["id"] in held:
                f.write(ln + "\n")
    return out


def config(**kw):
    from pyserini_splare.train.config import make_config

    cfg, _ = make_config({"recipe": "splade-tiny-cpu", "save_steps": 10_000, "log_every": 1, **kw})
    return cfg


def dev_flags(d: Path) -> dict:
    return {"dev_topics": str(d / "heldout_queries.tsv"), "dev_qrels": str(d / "heldout_qrels.txt"),
            "dev_corpus": str(d / "dev"), "dev_metrics": "RR@10"}


def metrics(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "dev" / "metrics.jsonl").read_text().splitlines()]


def test_splade_tiny_improves_and_its_output_is_an_encoder_spec(cacm_train, splade_tiny_path, tmp_path):
    from pyserini_splare.train.engine import train

    out = tmp_path / "splade-cacm"
    cfg = config(encoder=f"splade:{splade_tiny_path}", train_data=str(cacm_train / "train.jsonl"), output=str(out),
                 max_steps=40, batch_size=8, negatives=1, max_length=64, lr=1e-4, **dev_flags(cacm_train))
    train(cfg)
    rows = metrics(out)
    before, after = rows[0], rows[-1]
    assert before["step"] == 0 and after.get("final")
    assert after["RR@10"] > before["RR@10"], rows
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 41))
    assert all(r["l0_query"] > 0 and r["l0_doc"] > 0 for r in log)
    assert not (out / "checkpoints").exists() and not Path(str(out) + ".partial").exists()

    # The output directory is itself an encoder spec: `encode --encoder splade:OUT` writes the vectors the
    # trainer's final evaluation saw.
    from pyserini_splare.encode.__main__ import main as encode
    from pyserini_splare.formats.vectors_reader import open_collection

    assert encode(["--corpus", str(cacm_train / "dev"), "--encoder", f"splade:{out}",
                   "--output", str(tmp_path / "vectors")]) == 0
    ours = dict((d, v) for d, v, _ in open_collection([str(tmp_path / "vectors")]).iter_records())
    seen = dict((d, v) for d, v, _ in open_collection([str(out / "dev" / "final" / "vectors")]).iter_records())
    assert ours.keys() == seen.keys() and len(ours) == 316
    for docid, vec in seen.items():
        other = ours[docid]
        # same terms and quantized impacts, up to a rounding step where batch padding moves a float in the 7th digit
        assert set(vec) ^ set(other) <= {t for t in set(vec) | set(other) if max(vec.get(t, 0), other.get(t, 0)) <= 1}
        assert all(abs(vec[t] - other[t]) <= 1 for t in set(vec) & set(other))


@pytest.fixture(scope="module")
def small_splare(splade_tiny_path, tmp_path_factory):
    """SPLADE-tiny's trunk (2 BERT layers, hidden 128) cut after its last block + a random TopK SAE (1,024 latents)."""
    from pyserini_splare.encode.modules.sae import SAE, save_sae
    from pyserini_splare.encode.splare import SaeSpec, SplareConfig

    d = tmp_path_factory.mktemp("small-splare")
    g = torch.Generator().manual_seed(0)
    W = torch.randn(128, 1024, generator=g) / 128 ** 0.5
    sae = SAE(W, torch.zeros(1024), activation="topk", k=32, W_dec=W.T.clone(), b_dec=torch.zeros(128))
    save_sae(sae, str(d / "sae.safetensors"))
    SplareConfig(backbone=str(splade_tiny_path), layer=1, sae=SaeSpec("sae.safetensors", "plain"),
                 attention="bidirectional", max_length_query=64, max_length_doc=256, dtype="float32",
                 exclude_special_tokens=True).write(str(d))
    return d


def test_small_splare_improves_with_lora_and_a_frozen_sae(cacm_train, small_splare, tmp_path):
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    from pyserini_splare.train.engine import train

    sae_file = small_splare / "sae.safetensors"
    digest = hashlib.sha256(sae_file.read_bytes()).hexdigest()
    original = load_file(str(sae_file))
    seen = {}

    class GrabSae(TrainerCallback):
        def on_train_end(self, args, state, control, model=None, **kw):
            head = model[0].sparse_model.head
            seen.update({k: getattr(head, k).detach().cpu().clone() for k in ("W_enc", "b_enc")})

    out = tmp_path / "splare-cacm"
    cfg = config(encoder=f"splare:{small_splare}", train_data=str(cacm_train / "train.jsonl"), output=str(out),
                 max_steps=40, batch_size=8, negatives=1, max_length=64, lr=5e-4, **dev_flags(cacm_train))
    train(cfg, callbacks=[GrabSae()])
    rows = metrics(out)
    assert rows[-1]["RR@10"] > rows[0]["RR@10"] + 0.01, rows
    # the SAE: bit-identical in the trained model, and its file untouched (the output references it)
    assert torch.equal(seen["W_enc"], original["W_enc"]) and torch.equal(seen["b_enc"], original["b_enc"])
    assert hashlib.sha256(sae_file.read_bytes()).hexdigest() == digest
    saved = json.loads((out / "splare_config.json").read_text())
    assert Path(saved["sae"]["path"]).resolve() == sae_file.resolve() and saved["lora"] == "lora"
    # the LoRA adapter was trained: its B matrices start at zero (peft) and are not zero now -- except on BERT's
    # pooler, which "dense" also matches but the trunk's forward (last_hidden_state) never runs
    adapter = load_file(str(out / "lora" / "adapter_model.safetensors"))
    lora_b = {k: t for k, t in adapter.items() if "lora_B" in k and ".pooler." not in k}
    assert len(lora_b) >= 12 and all(bool(t.abs().sum() > 0) for t in lora_b.values()), \
        [k for k, t in lora_b.items() if not t.abs().sum() > 0]
    from pyserini_splare.encode import load_encoder

    assert load_encoder(f"splare:{out}").encode(["a sorting algorithm"], "query")[0].nnz > 0


def test_resume_after_step_k_equals_an_uninterrupted_run(cacm_train, splade_tiny_path, tmp_path):
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    from pyserini_splare.train.engine import train

    common = dict(encoder=f"splade:{splade_tiny_path}", train_data=str(cacm_train / "train.jsonl"), max_steps=6,
                  save_steps=3, batch_size=2, negatives=1, max_length=32, lr=1e-4, seed=3)
    full = tmp_path / "full"
    train(config(output=str(full), **common))

    class Killed(Exception):
        pass

    class KillAfterCheckpoint(TrainerCallback):
        def on_save(self, args, state, control, **kw):
            if state.global_step == 3:
                raise Killed()

    part = tmp_path / "resumed"
    with pytest.raises(Killed):
        train(config(output=str(part), **common), callbacks=[KillAfterCheckpoint()])
    assert not part.exists() and (tmp_path / "resumed.partial" / "checkpoints" / "checkpoint-3").is_dir()
    train(config(output=str(part), resume=True, **common))

    def log(d):
        return {r["step"]: r for r in map(json.loads, (d / "train_log.jsonl").read_text().splitlines())}

    a, b = log(full), log(part)
    assert sorted(a) == sorted(b) == [1, 2, 3, 4, 5, 6]
    for step in (4, 5, 6):
        assert b[step]["loss"] == pytest.approx(a[step]["loss"], abs=1e-6)
    wa, wb = load_file(str(full / "model.safetensors")), load_file(str(part / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=1e-6, rtol=0), k
    # and training did move the weights
    w0 = load_file(str(Path(splade_tiny_path) / "model.safetensors"))
    assert any(not torch.allclose(wa[k], w0[k]) for k in wa if k in w0)
