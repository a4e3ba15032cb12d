"""Top-K pooling in training (``train --topk-query K --topk-doc K``), as in the SPLARE paper's pooled models.

Checked against references written here: every vector the model outputs while training has at most K
non-zeros (a forward hook on the trained model); gradients reach exactly the kept features (a brute-force
mask, ties to the smaller id); and the trained output directory encodes with the same Top-K: ``encode``'s
vectors equal the same model's un-pruned vectors restricted to their K largest weights (sorted in numpy).
Runs are tiny (a few steps, batch 2, 32 tokens) on SPLADE-tiny and a small SPLARE built on its trunk.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import sentence_transformers  # noqa: F401  (a required dependency: imported, not skipped)
import torch

from pyserini_splare._errors import UsageError
from pyserini_splare.encode.modules.pruning import Pruning

pytestmark = pytest.mark.train

K_QUERY, K_DOC = 6, 20
SCALE = 1000.0  # quantization scale of the encode check: weights of SPLADE-tiny stay far below MAX_IMPACT / 1000

QUERIES = ["sorting algorithms for large files", "compiler optimization of loops", "operating system scheduling",
           "numerical solution of differential equations", "database query languages", "parsing context free grammars",
           "memory management with paging", "random number generation methods"]
DOCS = ["A comparison of merge sort and quicksort for external files on magnetic tape, with timing results.",
        "Loop unrolling, strength reduction and code motion in an optimizing FORTRAN compiler.",
        "A time-sharing scheduler that assigns priorities to processes by their recent processor use.",
        "Runge-Kutta and multistep methods for stiff systems of ordinary differential equations.",
        "A relational language for querying files of records by their attribute values.",
        "An efficient parsing algorithm for context-free languages that runs in cubic time.",
        "Demand paging and page replacement policies measured on a virtual memory system.",
        "Linear congruential generators and tests of randomness for their output sequences."]


def pruned_reference(vec, k: int) -> dict[int, float]:
    """The K largest weights of an un-pruned vector, ties to the smaller feature id (numpy lexsort)."""
    ids, w = np.asarray(vec.ids), np.asarray(vec.weights)
    if k <= 0 or k >= len(ids):
        return dict(zip(ids.tolist(), w.tolist()))
    order = np.lexsort((ids, -w))[:k]
    return dict(zip(ids[order].tolist(), w[order].tolist()))


# ---- (b) gradients reach only the kept features ---------------------------------------------------------------


def brute_force_mask(w: torch.Tensor, k: int) -> torch.Tensor:
    mask = torch.zeros_like(w)
    for r in range(w.shape[0]):
        row = w[r].tolist()
        for j in sorted(range(len(row)), key=lambda j: (-row[j], j))[:k]:
            mask[r, j] = 1.0
    return mask


@pytest.mark.parametrize("kind,k", [("query", 2), ("doc", 7)])
def test_topk_keeps_k_per_row_and_gradients_reach_only_kept_features(kind, k):
    g = torch.Generator().manual_seed(0)
    w = torch.relu(torch.randn(3, 40, generator=g))
    w[0] = 0.0
    w[0, [5, 2, 9, 30, 11, 17, 23, 31, 1]] = torch.tensor([3.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 0.5, 0.5])  # ties
    pooled = w.clone().requires_grad_()
    upstream = torch.randn(3, 40, generator=g)
    out = Pruning("topk", 2, 7)(pooled, kind)
    (out * upstream).sum().backward()
    mask = brute_force_mask(w, k)
    assert torch.equal(out.detach(), w * mask)
    assert torch.equal(pooled.grad, upstream * mask)  # d(sum(upstream * w * mask))/dw = upstream * mask
    assert ((out.detach() != 0).sum(-1) <= k).all()
    if kind == "query":  # the tie at 2.0 between features 2, 9 and 30 goes to the smaller id
        assert mask[0].nonzero().flatten().tolist() == [2, 5]


# ---- training runs ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def train_file(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("topk-data")
    with open(d / "train.jsonl", "w", encoding="utf-8") as f:
        for i, q in enumerate(QUERIES):
            f.write(json.dumps({"query": q, "pos": [DOCS[i]], "neg": [DOCS[(i + 3) % len(DOCS)]]}) + "\n")
    (d / "corpus").mkdir()
    with open(d / "corpus" / "docs.jsonl", "w", encoding="utf-8") as f:
        for i, t in enumerate(DOCS):
            f.write(json.dumps({"id": f"d{i}", "contents": t}) + "\n")
    return d


@pytest.fixture(scope="module")
def small_splare(splade_tiny_path, tmp_path_factory) -> Path:
    """SPLADE-tiny's trunk cut after its last block + a random TopK SAE (1,024 latents, 32 per token)."""
    from pyserini_splare.encode.modules.sae import SAE, save_sae
    from pyserini_splare.encode.splare import SaeSpec, SplareConfig

    d = tmp_path_factory.mktemp("topk-splare")
    g = torch.Generator().manual_seed(0)
    W = torch.randn(128, 1024, generator=g) / 128 ** 0.5
    save_sae(SAE(W, torch.zeros(1024), activation="topk", k=32, W_dec=W.T.clone(), b_dec=torch.zeros(128)),
             str(d / "sae.safetensors"))
    SplareConfig(backbone=str(splade_tiny_path), layer=1, sae=SaeSpec("sae.safetensors", "plain"),
                 attention="bidirectional", max_length_query=32, max_length_doc=32, dtype="float32",
                 exclude_special_tokens=True).write(str(d))
    return d


def config(**kw):
    from pyserini_splare.train.config import make_config

    cfg, _ = make_config({"recipe": "splade-tiny-cpu", "save_steps": 10_000, "log_every": 1, "max_steps": 3,
                          "batch_size": 2, "negatives": 1, "max_length": 32, "lr": 1e-4, **kw})
    return cfg


@pytest.fixture(scope="module", params=["splade", "splare"])
def trained(request, train_file, splade_tiny_path, tmp_path_factory):
    """(kind, the encoder spec it started from, OUT, the non-zeros of every training output by side)."""
    from transformers import TrainerCallback

    from pyserini_splare.train.engine import train

    kind = request.param
    start = f"splade:{splade_tiny_path}" if kind == "splade" else f"splare:{request.getfixturevalue('small_splare')}"
    seen: dict[str, list[int]] = {"query": [], "doc": []}

    class WatchOutputs(TrainerCallback):
        """A forward hook on the trained SparseModel: the non-zeros of each row it hands to the loss."""

        def on_train_begin(self, args, state, control, model=None, **kw):
            def hook(module, inputs, output):
                seen[inputs[1]].extend((output.detach() != 0).sum(-1).tolist())

            self.handle = model[0].sparse_model.register_forward_hook(hook)

        def on_train_end(self, args, state, control, **kw):
            self.handle.remove()

    out = tmp_path_factory.mktemp(f"topk-{kind}") / "out"
    train(config(encoder=start, train_data=str(train_file / "train.jsonl"), output=str(out),
                 topk_query=K_QUERY, topk_doc=K_DOC), callbacks=[WatchOutputs()])
    return kind, start, out, seen


def test_every_training_output_has_at_most_k_non_zeros(trained, train_file):
    from pyserini_splare.encode import load_encoder

    kind, start, out, seen = trained
    # 3 steps x 2 rows: queries once, positives and negatives (the document side) twice (more: the trainer's
    # model card encodes a few examples through the same model at the start)
    assert len(seen["query"]) >= 6 and len(seen["doc"]) >= 12, {k: len(v) for k, v in seen.items()}
    assert max(seen["query"]) <= K_QUERY and max(seen["doc"]) <= K_DOC, seen
    assert min(seen["query"]) > 0 and min(seen["doc"]) > 0
    # ... and Top-K did cut: the starting model's own vectors of these texts are longer than K
    m = load_encoder(start)
    assert max(v.nnz for v in m.encode(QUERIES, "query")) > K_QUERY
    assert max(v.nnz for v in m.encode(DOCS, "doc")) > K_DOC
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]
    assert all(0 < r["l0_query"] <= K_QUERY and 0 < r["l0_doc"] <= K_DOC for r in log)
    assert json.loads((out / "train_config.json").read_text())["topk_doc"] == K_DOC


def test_the_output_encodes_with_the_same_topk(trained, train_file, tmp_path):
    from pyserini_splare.encode import load_encoder
    from pyserini_splare.encode.__main__ import main as encode
    from pyserini_splare.formats.vectors_reader import open_collection

    kind, _, out, _ = trained
    spec = f"{kind}:{out}"
    assert json.loads((out / "pruning.json").read_text()) == {"mode": "topk", "k_query": K_QUERY, "k_doc": K_DOC,
                                                              "mass": None}
    model = load_encoder(spec, batch_size=1)
    assert model.pruning is not None and model.pruning.config()["k_doc"] == K_DOC
    assert encode(["--corpus", str(train_file / "corpus"), "--encoder", spec, "--output", str(tmp_path / "vec"),
                   "--batch-size", "1", "--quant-scale", str(SCALE)]) == 0
    coll = open_collection([str(tmp_path / "vec")])
    ours = dict((d, v) for d, v, _ in coll.iter_records())
    assert json.loads((tmp_path / "vec" / "meta.json").read_text())["pooling"]["model_pruning"]["k_doc"] == K_DOC

    model.pruning = None  # the same weights, un-pruned: the reference is their top K, sorted here
    full = model.encode(DOCS, "doc")
    assert max(v.nnz for v in full) > K_DOC
    for i, vec in enumerate(full):
        top = pruned_reference(vec, K_DOC)
        expected = {model.space.term(j): int(np.rint(np.float64(w) * SCALE)) for j, w in top.items()}
        expected = {t: q for t, q in expected.items() if q > 0}
        assert ours[f"d{i}"] == expected, i
        assert len(ours[f"d{i}"]) <= K_DOC

    # queries: the loaded model prunes them with K_QUERY (search encodes queries through it)
    pruned = load_encoder(spec, batch_size=1).encode(QUERIES, "query")
    for vec, ref in zip(pruned, model.encode(QUERIES, "query")):
        assert vec.nnz <= K_QUERY
        assert dict(zip(vec.ids.tolist(), vec.weights.tolist())) == pruned_reference(ref, K_QUERY)


# ---- the checkpoint record and refusals ------------------------------------------------------------------------


def test_pruning_json_round_trip_and_bad_files(splade_tiny_path, tmp_path):
    from pyserini_splare.encode import load_encoder

    d = tmp_path / "m"
    shutil.copytree(splade_tiny_path, d)
    m = load_encoder(f"splade:{d}")
    assert m.pruning is None
    m.pruning = Pruning("topk", 3, 9)
    m.save(d)
    assert load_encoder(f"splade:{d}").pruning.config() == {"mode": "topk", "k_query": 3, "k_doc": 9, "mass": None}
    m.pruning = None  # saved again without pruning: the old record goes, or it would prune a model that does not
    m.save(d)
    assert not (d / "pruning.json").exists() and load_encoder(f"splade:{d}").pruning is None
    for bad, message in (({"mode": "topk", "k_query": -1, "k_doc": 9}, "top-k sizes must be >= 0"),
                         ({"mode": "topk", "k_query": 3, "k_top": 9}, "unknown keys ['k_top']"),
                         ({"mode": "best", "k_query": 3}, "mode must be one of")):
        (d / "pruning.json").write_text(json.dumps(bad))
        with pytest.raises(UsageError, match=r"pruning\.json: .*" + message.replace("[", r"\[")):
            load_encoder(f"splade:{d}")


def run_train(argv, capsys):
    from pyserini_splare.train.__main__ import main

    rc = main(argv)
    return rc, capsys.readouterr().err.strip().splitlines()


def nothing_written(out: Path) -> bool:
    return not out.exists() and not Path(str(out) + ".partial").exists() and \
        not any(p.name.startswith(".train-data-") for p in out.parent.iterdir())


@pytest.mark.parametrize("argv,message", [
    (["--topk-doc", "-1"], "--topk-doc must be >= 0, got -1"),
    (["--topk-query", "-5", "--topk-doc", "400"], "--topk-query must be >= 0, got -5"),
    (["--topk-doc", "30522"], "--topk-doc 30522 keeps all 30,522 features"),
])
def test_cli_refuses_topk_that_cannot_work(train_file, splade_tiny_path, tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    rc, err = run_train(["--encoder", f"splade:{splade_tiny_path}", "--train-data", str(train_file / "train.jsonl"),
                         "--negatives", "1", "--output", str(out), *argv], capsys)
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert nothing_written(out)


def test_recipes_leave_topk_off_and_say_where_40_400_comes_from():
    from pyserini_splare.train.config import RECIPES_DIR, make_config

    for name in ("splare-7b", "splade-8b"):
        cfg, _ = make_config({"recipe": name})
        assert cfg.topk_query == cfg.topk_doc == 0
        assert "--topk-query 40 --topk-doc 400" in (RECIPES_DIR / f"{name}.yaml").read_text()
    cfg, _ = make_config({"recipe": "splare-7b", "topk_query": 40, "topk_doc": 400})
    assert (cfg.topk_query, cfg.topk_doc) == (40, 400)
