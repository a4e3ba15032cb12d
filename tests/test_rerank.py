"""Qwen3-Reranker: exact prompt, scores equal a hand computation on a tiny offline Qwen3, truncation,
merging below the depth, resuming, bad input."""

from __future__ import annotations

import json
import math
import shutil

import pytest

import torch  # noqa: E402  (a required dependency: missing is a failure, not a skip)

from pyserini_splare._errors import UsageError  # noqa: E402
from pyserini_splare.rerank import PREFIX, SUFFIX, format_prompt, merge, rerank_run  # noqa: E402
from pyserini_splare.rerank.__main__ import main  # noqa: E402

@pytest.fixture(scope="session")
def tiny_qwen3_dir(tmp_path_factory):
    """A Qwen3-shaped causal LM (random weights) with a byte-level BPE tokenizer trained here, holding the
    chat special tokens and single tokens "yes" and "no" like the real Qwen3 vocabulary."""
    from pyserini_splare.testing.tiny_models import qwen3_reranker

    return qwen3_reranker(tmp_path_factory.mktemp("tiny-qwen3-reranker"), [
        "Judge whether the Document meets the requirements based on the Query and the Instruct provided.",
        "<Instruct>: Given a web search query, retrieve relevant passages", "<Query>: what is a cat",
        "<Document>: cats are small animals", "<think>\n\n</think>\n\n", "system user assistant"] * 5)


def test_prompt_is_the_model_card_template():
    expected = (
        "<|im_start|>system\n"
        "Judge whether the Document meets the requirements based on the Query and the Instruct provided. "
        "Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n"
        "<|im_start|>user\n"
        "<Instruct>: Given a web search query, retrieve relevant passages that answer the query\n"
        "<Query>: what is a cat\n"
        "<Document>: Cats purr.<|im_end|>\n"
        "<|im_start|>assistant\n"
        "<think>\n\n</think>\n\n"
    )
    assert format_prompt("what is a cat", "Cats purr.") == expected
    assert format_prompt("q", "d", instruction="Find Persian news").startswith(PREFIX + "<Instruct>: Find Persian news\n")
    assert PREFIX + "<Instruct>" in expected and expected.endswith(SUFFIX)


def _hand_score(model_dir, query, doc):
    """P(yes) = exp(l_yes) / (exp(l_yes) + exp(l_no)) at the last position of the unpadded prompt."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    ids = tok(format_prompt(query, doc), add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
    ly, ln = float(logits[tok.convert_tokens_to_ids("yes")]), float(logits[tok.convert_tokens_to_ids("no")])
    return math.exp(ly) / (math.exp(ly) + math.exp(ln))


def test_pair_ids_equal_tokenizing_the_whole_prompt(tiny_qwen3_dir):
    from transformers import AutoTokenizer

    from pyserini_splare.rerank import Qwen3Reranker

    r = Qwen3Reranker(str(tiny_qwen3_dir))
    tok = AutoTokenizer.from_pretrained(tiny_qwen3_dir)
    for q, d in [("what is a cat", "cats are small animals"), ("cat?", "123 dogs, 4 cats"), ("x", "  spaced  ")]:
        assert r.pair_ids(q, d) == tok(format_prompt(q, d), add_special_tokens=False)["input_ids"]


def test_truncation_keeps_prefix_head_and_suffix(tiny_qwen3_dir):
    from pyserini_splare.rerank import Qwen3Reranker, user_head

    r = Qwen3Reranker(str(tiny_qwen3_dir), max_length=120)
    ids = r.pair_ids("what is a cat", "cats are small animals " * 100)
    head = r._tok(user_head("what is a cat"))
    assert len(ids) == 120
    assert ids[:len(r.prefix_ids)] == r.prefix_ids
    assert ids[len(r.prefix_ids):len(r.prefix_ids) + len(head)] == head
    assert ids[-len(r.suffix_ids):] == r.suffix_ids
    full = r._tok(" " + "cats are small animals " * 100)
    assert ids[len(r.prefix_ids) + len(head):-len(r.suffix_ids)] == full[:120 - len(r.prefix_ids) - len(head) - len(r.suffix_ids)]
    with pytest.raises(UsageError, match="no room"):
        Qwen3Reranker(str(tiny_qwen3_dir), max_length=len(r.prefix_ids) + len(r.suffix_ids) + 3).pair_ids("q " * 50, "d")


CORPUS = [
    {"id": "d1", "title": "Cats", "text": "cats are small animals"},
    {"id": "d2", "text": "dogs bark at the mail"},
    {"id": "d3", "title": "Query", "text": "a web search query retrieves passages"},
    {"id": "d4", "contents": "yes no yes"},
    {"id": "d5", "text": "unrelated text that is not in the run"},
]
RUN = """\
q1 Q0 d2 1 9 bm25
q1 Q0 d1 2 8 bm25
q1 Q0 d3 3 7 bm25
q1 Q0 d4 4 6 bm25
q2 Q0 d4 1 3 bm25
q2 Q0 d3 2 2 bm25
q2 Q0 d1 3 1 bm25
"""
TOPICS = {"q1": "what is a cat", "q2": "how does web search work"}


def _inputs(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in CORPUS))
    run = tmp_path / "run.txt"
    run.write_text(RUN)
    topics = tmp_path / "topics.tsv"
    topics.write_text("".join(f"{q}\t{t}\n" for q, t in TOPICS.items()))
    return str(corpus), str(run), str(topics)


def test_cli_scores_equal_hand_computation(tmp_path, tiny_qwen3_dir):
    from pyserini_splare.corpus import join_title
    from pyserini_splare.formats.runs import read_trec_run

    corpus, run, topics = _inputs(tmp_path)
    out = tmp_path / "reranked.txt"
    assert main(["--run", run, "--topics", topics, "--corpus", corpus, "--model", str(tiny_qwen3_dir),
                 "--depth", "3", "--batch-size", "2", "--output", str(out)]) == 0
    texts = {d["id"]: join_title(d.get("title"), d.get("text") or d.get("contents")) for d in CORPUS}
    got = read_trec_run(out)
    lines = [l.split() for l in out.read_text().splitlines()]
    for qid, first in (("q1", ["d2", "d1", "d3", "d4"]), ("q2", ["d4", "d3", "d1"])):
        hand = {d: _hand_score(tiny_qwen3_dir, TOPICS[qid], texts[d]) for d in first[:3]}
        for d, p in hand.items():
            assert got[qid][d] == pytest.approx(p, abs=1e-5)  # padding in batches of 2 changes nothing
        order = [l[2] for l in lines if l[0] == qid]
        assert order[:3] == sorted(first[:3], key=lambda d: -hand[d])
        assert order[3:] == first[3:]  # below the depth: first-stage order, scores -1, -2, ...
        assert [got[qid][d] for d in order[3:]] == [-float(i) for i in range(1, len(first) - 2)]
        assert [int(l[3]) for l in lines if l[0] == qid] == list(range(1, len(first) + 1))
    assert not (tmp_path / "reranked.txt.partial.jsonl").exists()


def test_merge_then_the_run_writer_orders_ties_by_docid(tmp_path):
    from pyserini_splare.formats.runs import ranked

    # first stage: c, b, a above the depth; e, d below it (the tail keeps first-stage order)
    hits = {"c": 5.0, "b": 4.0, "a": 3.0, "e": 2.0, "d": 1.0}
    merged = merge(hits, {"a": 0.5, "b": 0.9, "c": 0.5}, 3)
    assert merged == {"a": 0.5, "b": 0.9, "c": 0.5, "e": -1.0, "d": -2.0}
    # tied reranker scores (a, c) rank by docid, as every run of the package (runs.ranked)
    assert ranked(merged) == [("b", 0.9), ("a", 0.5), ("c", 0.5), ("e", -1.0), ("d", -2.0)]


def test_resume_after_interruption(tmp_path):
    from pyserini_splare.formats.runs import read_trec_run

    corpus, run_path, _ = _inputs(tmp_path)
    run = read_trec_run(run_path)
    out = tmp_path / "out.txt"
    settings = {"model": "len", "depth": 2}
    calls = []

    def scorer(q, docs):
        calls.append(q)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return [len(d) / 100 for d in docs]

    with pytest.raises(KeyboardInterrupt):
        rerank_run(run, TOPICS, corpus, scorer, 2, out, settings, "t")
    side = tmp_path / "out.txt.partial.jsonl"
    assert not out.exists() and len(side.read_text().splitlines()) == 2  # settings + q1
    with open(side, "a") as f:
        f.write('{"qid": "q2", "sco')  # a torn line from a crash mid-append
    with pytest.raises(UsageError, match="other settings"):
        rerank_run(run, TOPICS, corpus, scorer, 2, out, {"model": "other", "depth": 2}, "t")
    calls.clear()
    rerank_run(run, TOPICS, corpus, lambda q, d: (calls.append(q), [len(x) / 100 for x in d])[1], 2, out, settings, "t")
    assert calls == [TOPICS["q2"]] and not side.exists()
    ref = tmp_path / "ref.txt"
    rerank_run(run, TOPICS, corpus, lambda q, d: [len(x) / 100 for x in d], 2, ref, settings, "t")
    assert out.read_text() == ref.read_text()


def test_depth_beyond_run_and_missing_docs(tmp_path, tiny_qwen3_dir, capsys):
    corpus, run, topics = _inputs(tmp_path)
    out = tmp_path / "o.txt"
    base = ["--run", run, "--topics", topics, "--corpus", corpus, "--model", str(tiny_qwen3_dir), "--output", str(out)]
    assert main(base + ["--depth", "4"]) == 2  # q2 has 3 hits
    err = capsys.readouterr().err
    assert err.startswith("error: --depth 4 exceeds") and err.count("\n") == 1 and not out.exists()
    assert main(base + ["--depth", "4", "--allow-short"]) == 0
    before = out.read_text()
    capsys.readouterr()
    assert main(base + ["--depth", "2"]) == 2  # the one output rule: an existing run needs --overwrite
    err = capsys.readouterr().err
    assert "already exists" in err and err.count("\n") == 1 and out.read_text() == before
    base = base + ["--overwrite"]
    small = tmp_path / "small.jsonl"
    small.write_text(json.dumps(CORPUS[0]) + "\n")
    assert main(base[:5] + [str(small)] + base[6:] + ["--depth", "2"]) == 2
    assert "not in the corpus" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_text("q1 d1 1\n")
    assert main(["--run", str(bad)] + base[2:]) == 2
    assert "bad.txt:1" in capsys.readouterr().err


def test_model_without_yes_no_tokens(tmp_path, tiny_qwen3_dir):
    from transformers import AutoTokenizer

    from pyserini_splare.rerank import Qwen3Reranker

    d = tmp_path / "m"
    shutil.copytree(tiny_qwen3_dir, d)
    tok = json.loads((d / "tokenizer.json").read_text())
    vocab = tok["model"]["vocab"]
    vocab["yes_"] = vocab.pop("yes")
    tok["model"]["merges"] = [m for m in tok["model"]["merges"] if "".join(m if isinstance(m, list) else m.split()) != "yes"]
    (d / "tokenizer.json").write_text(json.dumps(tok))
    AutoTokenizer.from_pretrained(d)
    with pytest.raises(UsageError, match="no single token 'yes'"):
        Qwen3Reranker(str(d))
