"""The offline demo: its hand-written data is consistent, and the whole pipeline runs and evaluates."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest

from pyserini_splare.demo.data import QRELS, TOPICS, load_corpus
from pyserini_splare.topics import read_qrels, read_tsv_topics

pytestmark = [pytest.mark.jvm, pytest.mark.train]  # the demo runs BM25 and trains its SAE


def test_demo_collection_is_consistent():
    docs = load_corpus()
    ids = [d["id"] for d in docs]
    assert len(ids) == len(set(ids)) == 69
    assert Counter(d["lang"] for d in docs) == {"en": 18, "zh": 17, "fa": 17, "ru": 17}
    assert all(d["title"].strip() and d["text"].strip() for d in docs)
    topics = read_tsv_topics(TOPICS)
    qrels = read_qrels(QRELS).judgments
    assert set(qrels) == set(topics) and len(topics) == 8
    for n, q in enumerate(topics, 1):
        js = qrels[q]
        assert set(js) <= set(ids)
        # per language: the report of the event (2) and a same-topic, different-event item (1)
        for lang in ("en", "zh", "fa", "ru"):
            assert js[f"{lang}-t{n}a"] == 2 and js[f"{lang}-t{n}b"] == 1
        assert set(js.values()) <= {0, 1, 2}


def _ndcg_at(run_lines: list[str], qrels: dict[str, dict[str, int]], k: int) -> float:
    """trec_eval's nDCG@k written out: gain = grade, discount 1/log2(rank + 1), ideal from the qrels,
    mean over the judged queries (ties broken by score desc, docid desc, as trec_eval sorts)."""
    run: dict[str, list[tuple[float, str]]] = {}
    for line in run_lines:
        q, _, d, _, s, _ = line.split()
        run.setdefault(q, []).append((float(s), d))
    total = 0.0
    for q, js in qrels.items():
        ranked = [d for _, d in sorted(run.get(q, []), key=lambda x: (-x[0], [-ord(c) for c in x[1]]))][:k]
        dcg = sum(js.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked))
        ideal = sorted(js.values(), reverse=True)[:k]
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
        total += dcg / idcg
    return total / len(qrels)


@pytest.fixture(scope="module")
def demo_result(tmp_path_factory, splade_tiny_path):  # the demo needs the real SPLADE-tiny weights
    from pyserini_splare.demo.pipeline import run_demo

    # a smaller SAE and fewer steps than the CLI's defaults: the pipeline is what is under test
    out = tmp_path_factory.mktemp("demo")
    return out, run_demo(out, threads=2, sae_steps=20, sae_latents=256, sae_k=8)


def test_demo_runs_every_stage_and_evaluates(demo_result):
    out, r = demo_result
    assert set(r.scores) == {"bm25", "splade-tiny", "splare-demo", "rrf-splare-splade", "rrf-all"}
    qrels = read_qrels(QRELS).judgments
    for name, path in r.runs.items():
        lines = path.read_text().splitlines()
        assert {line.split()[0] for line in lines} == set(qrels), name
        for metric, k in (("nDCG@10", 10), ("nDCG@20", 20)):
            assert r.scores[name][metric] == pytest.approx(_ndcg_at(lines, qrels, k), abs=1e-4), (name, metric)
    # English queries, English analyzer: BM25 cannot reach a Chinese, Persian or Russian document
    assert r.non_english_found["bm25"] == 0
    assert r.non_english_total == 8 * 3 * 2
    saved = json.loads((out / "demo-results.json").read_text(encoding="utf-8"))
    assert saved["scores"] == r.scores
    assert "REAL" in r.models["splade-tiny"] and "LOCALLY BUILT" in r.models["splare-demo"]


def test_demo_explains_one_query_with_labelled_latents(demo_result):
    _, r = demo_result
    e = r.explanation
    assert e["qid"] == "q7" and e["query"] == read_tsv_topics(TOPICS)["q7"]
    weights = [f["weight"] for f in e["features"]]
    assert 0 < len(weights) <= 10 and weights == sorted(weights, reverse=True)
    assert all(f["feature"].startswith("L") and int(f["feature"][1:]) < 256 for f in e["features"])
    assert any(f["label"] for f in e["features"])


def test_demo_leaves_a_splare_checkpoint_that_reproduces_its_run(demo_result, tmp_path):
    """search --encoder splare:OUT/models/splare-demo on the demo's index gives the demo's run, line for line."""
    from pyserini_splare.encode import load_encoder
    from pyserini_splare.encode.model import SparseModel
    from pyserini_splare.search.__main__ import main as search_main

    out, r = demo_result
    ckpt = out / "models" / "splare-demo"
    assert r.splare_checkpoint == ckpt
    cfg = json.loads((ckpt / "splare_config.json").read_text())
    assert cfg["backbone"] == "trunk" and cfg["sae"] == {"path": "sae", "format": "plain", "activation": None,
                                                          "k": None}
    assert cfg["attention"] == "bidirectional" and cfg["exclude_special_tokens"] is True
    model = load_encoder(str(ckpt))  # a directory names its kind
    assert isinstance(model, SparseModel) and model.kind == "splare" and model.space.size == 256
    rerun = tmp_path / "run.txt"
    assert search_main(["--index", str(out / "indexes" / "splare-demo.exact"), "--topics", str(TOPICS),
                        "--encoder", f"splare:{ckpt}", "--output", str(rerun), "--hits", "100"]) == 0
    def hits(path):  # qid, docid, rank, score (the run tag may name the file)
        return [line.split()[:5] for line in path.read_text().splitlines()]

    assert hits(rerun) == hits(r.runs["splare-demo"]) and len(hits(rerun)) > 8


def test_demo_cli_rejects_unknown_query(capsys):
    from pyserini_splare.demo.__main__ import main

    assert main(["--explain", "q99"]) == 2
    assert "not a demo query" in capsys.readouterr().err


def test_demo_quiet_prints_only_the_table(tmp_path, capfd, splade_tiny_path):
    """`demo --quiet`: the result table on stdout and nothing at all on stderr (no explanation, no bars,
    including the ones transformers draws while a checkpoint is written)."""
    from pyserini_splare.demo.__main__ import main

    capfd.readouterr()
    assert main(["--quiet", "--output", str(tmp_path / "d"), "--sae-steps", "5"]) == 0
    out, err = capfd.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["run", "nDCG@10", "nDCG@20"] and {ln.split()[0] for ln in lines[1:]} >= {
        "bm25", "splade-tiny", "splare-demo"}
