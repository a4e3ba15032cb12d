"""Training data: the FlagEmbedding JSONL format, the miner, and the trainer's refusals of bad input."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from pyserini_splare._errors import UsageError
from pyserini_splare.train.data_format import columns, iter_examples, training_row, training_rows

REPO = Path(__file__).resolve().parents[1]
# Lucene's English stop words (Anserini's default analyzer drops them: they never make a BM25 match).
STOPWORDS = set("a an and are as at be but by for if in into is it no not of on or such that the their then there "
                "these they this to was will with".split())


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def good(i: int, n_neg: int = 3, scores: bool = False) -> dict:
    row = {"query": f"q{i}", "pos": [f"p{i}a", f"p{i}b"], "neg": [f"n{i}_{j}" for j in range(n_neg)]}
    if scores:
        row["pos_scores"] = [5.0, 4.0]
        row["neg_scores"] = [float(j) for j in range(n_neg)]
    return row


def test_examples_stream_and_prompt_is_prepended(tmp_path):
    p = write_jsonl(tmp_path / "t.jsonl", [good(0), {**good(1, scores=True), "prompt": "Represent: "}])
    ex = list(iter_examples(p, negatives=3))
    assert [e.query_text for e in ex] == ["q0", "Represent: q1"]
    assert not ex[0].has_scores and ex[1].has_scores
    assert ex[1].where == f"{p}:2"


@pytest.mark.parametrize("line,message", [
    ('{"query": "q", "pos": ["p"], "neg": ["n"]', "malformed JSON"),
    ({"query": "q", "pos": [], "neg": ["n"]}, "no positives"),
    ({"query": "q", "neg": ["n"]}, "no positives"),
    ({"query": "", "pos": ["p"], "neg": ["n"]}, "'query' must be a non-empty string"),
    ({"query": "q", "pos": ["p"], "neg": ["n"], "pos_scores": [1.0]}, "must be given together"),
    ({"query": "q", "pos": ["p"], "neg": ["n"], "pos_scores": [1.0, 2.0], "neg_scores": [0.0]}, "2 scores for 1"),
    ({"query": "q", "pos": ["p"], "neg": ["n"], "pos_scores": ["x"], "neg_scores": [0.0]}, "finite number"),
    ({"query": "q", "pos": ["p"], "neg": ["n"], "passages": []}, "unknown keys"),
    ({"query": "q", "pos": ["p", 3], "neg": ["n"]}, "pos[1]"),
])
def test_bad_line_is_one_error_naming_file_and_line(tmp_path, line, message):
    p = write_jsonl(tmp_path / "t.jsonl", [good(0, 1), good(1, 1), line])
    with pytest.raises(UsageError) as e:
        list(iter_examples(p, negatives=1))
    assert str(e.value).startswith(f"{p}:3: ") and message in str(e.value)
    assert "\n" not in str(e.value)


def test_fewer_negatives_than_asked_and_missing_scores(tmp_path):
    p = write_jsonl(tmp_path / "t.jsonl", [good(0, 4), good(1, 2)])
    with pytest.raises(UsageError, match=rf"{p}:2: 2 negatives, fewer than the 4 asked for"):
        list(iter_examples(p, negatives=4))
    with pytest.raises(UsageError, match=rf"{p}:1: no teacher scores"):
        list(iter_examples(p, need_scores=True))


def test_rows_draw_a_positive_and_distinct_negatives_deterministically(tmp_path):
    p = write_jsonl(tmp_path / "t.jsonl", [good(i, 6, scores=True) for i in range(20)])
    rows = list(training_rows(p, negatives=3, with_label=True, seed=7))
    assert rows == list(training_rows(p, negatives=3, with_label=True, seed=7))
    assert rows != list(training_rows(p, negatives=3, with_label=True, seed=8))
    for i, r in enumerate(rows):
        assert list(r) == columns(3, True)
        negs = [r[f"negative_{k}"] for k in (1, 2, 3)]
        assert len(set(negs)) == 3 and all(n.startswith(f"n{i}_") for n in negs)
        # each label is the teacher score of the text drawn beside it
        assert r["label"][0] == {f"p{i}a": 5.0, f"p{i}b": 4.0}[r["positive"]]
        assert r["label"][1:] == [float(n.split("_")[1]) for n in negs]
    # drawn per line: the row of line i does not depend on the lines before it
    ex = list(iter_examples(p))
    assert training_row(ex[5], 5, 3, True, 7) == rows[5]


# ---- the trainer's CLI refuses bad input: one line, exit 2, nothing at the output path ---------------------


def run_train(argv, capsys):
    from pyserini_splare.train.__main__ import main

    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return rc, err


def nothing_written(out: Path) -> bool:
    return not out.exists() and not Path(str(out) + ".partial").exists() and \
        not any(p.name.startswith(".train-data-") for p in out.parent.iterdir())


@pytest.fixture
def tiny_spec(tmp_path):
    """A directory that resolves as a SPLADE spec without being loaded (errors come before loading)."""
    d = tmp_path / "m"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"architectures": ["BertForMaskedLM"]}))
    return f"splade:{d}"


@pytest.mark.parametrize("rows,extra,message", [
    ([good(0, 2), '{"query": oops}'], [], "t.jsonl:2: malformed JSON"),
    ([good(0, 2), {"query": "q", "pos": [], "neg": ["a", "b"]}], [], "t.jsonl:2: no positives"),
    ([good(0, 2), good(1, 1)], [], "t.jsonl:2: 1 negatives, fewer than the 2 asked for"),
    ([good(0, 2)], ["--loss", "kl"], "needs teacher scores"),
])
def test_cli_bad_training_data(tmp_path, capsys, tiny_spec, rows, extra, message):
    data = write_jsonl(tmp_path / "t.jsonl", rows)
    out = tmp_path / "out"
    rc, err = run_train(["--encoder", tiny_spec, "--train-data", str(data), "--output", str(out),
                         "--negatives", "2", *extra], capsys)
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert nothing_written(out)


@pytest.mark.parametrize("argv,message", [
    (["--recipe", "splare-9b"], "unknown recipe 'splare-9b' (known: splade-8b, splade-tiny-cpu, splare-7b"),
    (["--loss", "mse"], "--loss must be one of kl, marginmse, infonce"),
    (["--lr", "0"], "--lr must be positive"),
])
def test_cli_bad_settings(tmp_path, capsys, tiny_spec, argv, message):
    data = write_jsonl(tmp_path / "t.jsonl", [good(0, 8)])
    out = tmp_path / "out"
    rc, err = run_train(["--encoder", tiny_spec, "--train-data", str(data), "--output", str(out), *argv], capsys)
    assert rc == 2 and len(err) == 1 and message in err[0], err
    assert nothing_written(out)


@pytest.mark.parametrize("kind", ["milco", "qwen3-embed"])
def test_cli_kind_that_cannot_be_trained(tmp_path, capsys, kind):
    (tmp_path / "model").mkdir()
    spec = f"{kind}:{tmp_path / 'model'}"
    data = write_jsonl(tmp_path / "t.jsonl", [good(0, 8)])
    out = tmp_path / "out"
    rc, err = run_train(["--encoder", spec, "--train-data", str(data), "--output", str(out)], capsys)
    assert rc == 2 and len(err) == 1 and "cannot be trained" in err[0] and repr(kind) in err[0], err
    assert nothing_written(out)


def test_cli_existing_output_needs_resume(tmp_path, capsys, tiny_spec):
    data = write_jsonl(tmp_path / "t.jsonl", [good(0, 8)])
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    rc, err = run_train(["--encoder", tiny_spec, "--train-data", str(data), "--output", str(out)], capsys)
    assert rc == 2 and len(err) == 1 and "already exists" in err[0]
    assert sorted(os.listdir(out)) == ["keep.txt"]
    part = tmp_path / "other.partial"
    part.mkdir()
    rc, err = run_train(["--encoder", tiny_spec, "--train-data", str(data), "--output", str(tmp_path / "other")],
                        capsys)
    assert rc == 2 and len(err) == 1 and "pass --resume" in err[0]
    rc, err = run_train(["--encoder", tiny_spec, "--train-data", str(data), "--output", str(tmp_path / "new"),
                         "--resume"], capsys)
    assert rc == 2 and len(err) == 1 and "no unfinished run" in err[0]


def test_help_has_a_worked_example(capsys):
    from pyserini_splare.train.__main__ import build_parser

    text = build_parser().format_help()
    assert "python -m pyserini_splare.train.data" in text and "--recipe splade-tiny-cpu" in text
    assert "splare-7b" in text


# ---- mining with the toolkit: CACM titles -> abstracts, BM25 negatives ---------------------------------------


@pytest.fixture(scope="session")
def cacm_pairs(shared_data, tmp_path_factory):
    from pyserini_splare.testing import cacm_pairs as mod

    out = tmp_path_factory.mktemp("cacm-pairs")
    counts = mod.write_split(shared_data / "cacm" / "cacm.tar.gz", out, overwrite=True)
    from pyserini_splare.index.backends import build_index

    build_index("bm25", [str(out / "corpus")], str(out / "bm25"))
    return out, counts, mod


@pytest.mark.jvm  # BM25 over CACM
def test_cacm_split_holds_out_a_fifth(cacm_pairs):
    out, counts, mod = cacm_pairs
    assert counts["heldout"] == round(counts["documents"] / 5)
    train = {ln.split("\t")[0] for ln in (out / "train_queries.tsv").read_text().splitlines()}
    held = {ln.split("\t")[0] for ln in (out / "heldout_queries.tsv").read_text().splitlines()}
    assert not train & held and len(train | held) == counts["documents"]


@pytest.mark.jvm  # BM25 over CACM
def test_mined_lines_hold_the_abstract_and_bm25_negatives(cacm_pairs, tmp_path):
    out, _, mod = cacm_pairs
    from pyserini_splare.train.data.__main__ import main

    rc = main(["--queries", str(out / "train_queries.tsv"), "--corpus", str(out / "corpus"), "--positives",
               str(out / "train_pairs.tsv"), "--index", str(out / "bm25"), "--negatives", "8", "--depth", "50",
               "--output", str(tmp_path / "train.jsonl")])
    assert rc == 0
    pairs = mod.title_abstract_pairs(REPO.parent / "shared" / "data" / "cacm" / "cacm.tar.gz")
    by_title = {t: a for t, a in pairs.values()}
    abstracts = {a for _, a in pairs.values()}
    rows = [json.loads(x) for x in (tmp_path / "train.jsonl").read_text().splitlines()]
    assert len(rows) > 1000
    from nltk.stem.porter import PorterStemmer

    porter = PorterStemmer(mode=PorterStemmer.ORIGINAL_ALGORITHM)
    for r in rows[:200]:
        assert r["pos"] == [by_title[r["query"]]]  # the title's own abstract
        assert len(r["neg"]) == 8 and r["pos"][0] not in r["neg"] and set(r["neg"]) <= abstracts
        # BM25 retrieved them: each negative shares a term with the title (Anserini's default English analyzer:
        # lower case, stop words out, Porter stemmer). Compared here as the first 5 letters of NLTK's Porter
        # stems, because stems of one word family can still differ ("assembly" -> assembli, "assembler" -> assembl)
        def stems(text):
            return {porter.stem(w)[:5] for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOPWORDS}

        for n in r["neg"]:
            assert stems(r["query"]) & stems(n), (r["query"], n)
    assert list(iter_examples(tmp_path / "train.jsonl", negatives=8))  # the trainer's reader accepts it
    # the one output rule: mining again into the same file needs --overwrite, refused before any work
    before = (tmp_path / "train.jsonl").read_bytes()
    assert main(["--queries", str(out / "train_queries.tsv"), "--corpus", str(out / "corpus"), "--positives",
                 str(out / "train_pairs.tsv"), "--index", str(out / "bm25"), "--output",
                 str(tmp_path / "train.jsonl")]) == 2
    assert (tmp_path / "train.jsonl").read_bytes() == before


# ---- teacher scores, checked against the teachers' own outputs -------------------------------------------------

TEACHER_DOCS = ["A comparison of merge sort and quicksort for external files on magnetic tape.",
                "Loop unrolling and code motion in an optimizing FORTRAN compiler.",
                "A time-sharing scheduler that assigns priorities to processes by their processor use.",
                "Runge-Kutta methods for stiff systems of ordinary differential equations.",
                "A relational language for querying files of records by attribute values.",
                "An efficient parsing algorithm for context-free languages in cubic time.",
                "Demand paging and page replacement policies on a virtual memory system.",
                "Linear congruential generators and tests of randomness of their output."]
TEACHER_QUERIES = {"q0": "sorting files on tape", "q3": "solving differential equations",
                   "q6": "virtual memory paging"}


@pytest.fixture(scope="module")
def tiny_mining(splade_tiny_path, tmp_path_factory):
    """Eight documents, three queries with their positive, and an exact index of SPLADE-tiny's vectors."""
    from pyserini_splare.encode.__main__ import main as encode
    from pyserini_splare.index.backends import build_index

    d = tmp_path_factory.mktemp("teacher")
    (d / "corpus").mkdir()
    write_jsonl(d / "corpus" / "docs.jsonl", [{"id": f"d{i}", "contents": t} for i, t in enumerate(TEACHER_DOCS)])
    (d / "queries.tsv").write_text("".join(f"{q}\t{t}\n" for q, t in TEACHER_QUERIES.items()))
    (d / "positives.tsv").write_text("".join(f"{q}\td{q[1:]}\n" for q in TEACHER_QUERIES))
    assert encode(["--corpus", str(d / "corpus"), "--encoder", f"splade:{splade_tiny_path}",
                   "--output", str(d / "vectors")]) == 0
    build_index("exact", [str(d / "vectors")], str(d / "exact"))
    return d


def mine_with_teacher(d: Path, splade_tiny_path, teacher: str, out: Path) -> list[dict]:
    from pyserini_splare.train.data.__main__ import main

    assert main(["--queries", str(d / "queries.tsv"), "--corpus", str(d / "corpus"), "--positives",
                 str(d / "positives.tsv"), "--index", str(d / "exact"), "--encoder", f"splade:{splade_tiny_path}",
                 "--negatives", "3", "--depth", "6", "--teacher", teacher, "--output", str(out)]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == len(TEACHER_QUERIES)
    for r in rows:
        assert len(r["pos_scores"]) == len(r["pos"]) == 1 and len(r["neg_scores"]) == len(r["neg"]) == 3
    return rows


@pytest.mark.slow
def test_encoder_teacher_scores_are_dot_products_of_its_own_vectors(tiny_mining, splade_tiny_path, tmp_path):
    import numpy as np

    from pyserini_splare.encode import load_encoder

    spec = f"splade:{splade_tiny_path}"
    rows = mine_with_teacher(tiny_mining, splade_tiny_path, f"encoder:{spec}", tmp_path / "t.jsonl")
    enc = load_encoder(spec)
    size = enc.space.size

    def dense(vec):
        x = np.zeros(size, dtype=np.float64)
        x[np.asarray(vec.ids)] = vec.weights
        return x

    for r in rows:
        q = dense(enc.encode([r["query"]], "query")[0])
        docs = np.stack([dense(v) for v in enc.encode(r["pos"] + r["neg"], "doc")])
        expected = docs @ q
        assert (expected > 0).all()
        np.testing.assert_allclose(r["pos_scores"] + r["neg_scores"], expected, rtol=1e-5, atol=0)


@pytest.mark.slow
def test_cross_encoder_teacher_scores_are_its_predictions(tiny_mining, splade_tiny_path, tmp_path):
    """A cross-encoder folder built here (SPLADE-tiny's BERT + a seeded one-logit head): the mined scores equal
    CrossEncoder.predict, and both equal sigmoid of the logit computed with transformers directly."""
    import numpy as np
    import torch
    from sentence_transformers import CrossEncoder
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    ce_dir = tmp_path / "ce"
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(splade_tiny_path, num_labels=1)
    tok = AutoTokenizer.from_pretrained(splade_tiny_path)
    model.save_pretrained(ce_dir)
    tok.save_pretrained(ce_dir)
    rows = mine_with_teacher(tiny_mining, splade_tiny_path, f"cross-encoder:{ce_dir}", tmp_path / "t.jsonl")
    ce = CrossEncoder(str(ce_dir), device="cpu", local_files_only=True)
    model.eval()
    for r in rows:
        texts = r["pos"] + r["neg"]
        mined = np.array(r["pos_scores"] + r["neg_scores"])
        np.testing.assert_allclose(mined, ce.predict([(r["query"], t) for t in texts], batch_size=1), rtol=1e-5)
        with torch.no_grad():
            batch = tok([r["query"]] * len(texts), texts, padding=True, return_tensors="pt")
            logits = model(**batch).logits[:, 0].double()
        np.testing.assert_allclose(mined, torch.sigmoid(logits).numpy(), rtol=1e-5)
        assert len(set(mined.round(6))) > 1  # a constant scorer would pass the comparisons vacuously
