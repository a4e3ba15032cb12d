"""The local 2CR matrix (CACM: BM25, SPLADE-tiny, RRF) runs end to end; each run is checked independently.

Each condition runs as real subprocesses (`python -m pyserini_splare.index|encode|search|fusion`),
exactly as a user's `python -m pyserini_splare.repro local --all` does. What each run is checked
against (never a number recorded from an earlier run of ours):

* BM25: Anserini's published CACM regression (MAP 0.3123, P@30 0.1942), the matrix's expected scores.
* SPLADE-tiny (Lucene impact index): brute-force dot products of ``round(w x 100)`` query and
  document weights over the same vectors directory, ranked by (score desc, docid asc): the run must
  equal it hit for hit.
* RRF (k=60): the formula ``sum_r 1 / (60 + rank_r(d))`` over the two run files, hit for hit.

The measured AP and P@30 of both must equal ir_measures' own aggregate of the reference runs.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from pyserini_splare.repro import MEASURED, OK, load_matrix
from pyserini_splare.repro.__main__ import main

pytestmark = pytest.mark.jvm

SCALE = 100  # the local matrix's quantization scale (encode's default)


def _read_run(path: Path) -> dict[str, list[tuple[str, float]]]:
    """A TREC run as each query's (docid, score) list in file order, read with plain splitting."""
    run: dict[str, list[tuple[str, float]]] = {}
    for line in path.read_text().splitlines():
        q, _, d, _, s, _ = line.split()
        run.setdefault(q, []).append((d, float(s)))
    return run


def _top(scores: dict[str, float], k: int) -> list[tuple[str, float]]:
    return sorted(scores.items(), key=lambda h: (-h[1], h[0]))[:k]


def _brute_force_run(vectors_dir: Path, queries: dict[str, dict[str, int]], k: int) -> dict[str, list]:
    """Every document's dot product with every query (integer weights), top k by (score desc, docid asc)."""
    import scipy.sparse as sp

    docids, rows, cols, vals, vocab = [], [], [], [], {}
    for part in sorted(vectors_dir.glob("part-*.jsonl")):
        for line in part.read_text(encoding="utf-8").splitlines():
            doc = json.loads(line)
            for term, w in doc["vector"].items():
                rows.append(len(docids))
                cols.append(vocab.setdefault(term, len(vocab)))
                vals.append(int(w))
            docids.append(doc["id"])
    docs = sp.csr_matrix((vals, (rows, cols)), shape=(len(docids), len(vocab)), dtype=np.int64)
    out = {}
    for qid, q in queries.items():
        qv = np.zeros(len(vocab), dtype=np.int64)
        for term, w in q.items():
            if term in vocab:
                qv[vocab[term]] = w
        scores = docs @ qv
        out[qid] = _top({docids[i]: float(scores[i]) for i in np.nonzero(scores)[0]}, k)
    return out


def _aggregate(run: dict[str, list], qrels_path: Path) -> dict[str, float]:
    import ir_measures

    measures = [ir_measures.parse_measure("AP"), ir_measures.parse_measure("P@30")]
    qrels = list(ir_measures.read_trec_qrels(str(qrels_path)))
    flat = {q: dict(hits) for q, hits in run.items()}
    agg = ir_measures.calc_aggregate(measures, qrels, flat)
    return {str(m): float(agg[m]) for m in measures}


def test_local_matrix_runs_and_equals_independent_references(shared_data, splade_tiny_path, tmp_path, capsys):
    work = tmp_path / "work"
    report = tmp_path / "local.html"
    first = ["cacm-bm25", "cacm-splade-tiny", "cacm-rrf"]  # the public kinds' conditions: the test below
    rc = main(["local", "--work-dir", str(work), "--threads", "2", "--generate-report", str(report),
               *[a for c in first for a in ("--condition", c)]])
    out = capsys.readouterr().out
    stored = json.loads((work / "repro-results.json").read_text())["local"]
    m = load_matrix("local")
    assert {c.name for c in m.conditions} == set(first) | set(NEW_KINDS)
    assert set(stored) == set(first)
    assert rc == 0, out
    qrels = shared_data / "cacm" / "qrels.cacm.txt"

    # BM25: Anserini's published regression
    assert stored["cacm-bm25"]["grade"] == OK, (stored, out)
    assert stored["cacm-bm25"]["measured"] == pytest.approx({"AP": 0.3123, "P@30": 0.1942}, abs=5e-4)

    # SPLADE-tiny: the Lucene run equals brute force over the same vectors
    from pyserini_splare.index import get_backend, read_index_meta
    from pyserini_splare.search.queries import encode_topics
    from pyserini_splare.topics import get_topics

    index = work / "indexes" / "cacm.splade-tiny.lucene"
    topics = get_topics("cacm")
    floats = encode_topics(f"splade:{splade_tiny_path}", topics, get_backend("lucene"), read_index_meta(index),
                           batch_size=32)  # the matrix's batch size: the same batches as its search step
    queries = {q: {t: int(np.rint(w * SCALE)) for t, w in v.items() if np.rint(w * SCALE) > 0} for q, v in floats.items()}
    reference = _brute_force_run(work / "vectors" / "cacm.splade-tiny", queries, 1000)
    run = _read_run(work / "runs" / "run.cacm.splade-tiny.txt")
    assert run.keys() == {q for q, hits in reference.items() if hits}
    for qid, hits in run.items():
        assert hits == reference[qid], qid
    assert stored["cacm-splade-tiny"]["grade"] == MEASURED
    assert stored["cacm-splade-tiny"]["measured"] == pytest.approx(_aggregate(reference, qrels), abs=1e-9)

    # RRF: the formula over the two run files
    fused: dict[str, dict[str, float]] = {}
    for name in ("run.cacm.bm25.txt", "run.cacm.splade-tiny.txt"):
        for qid, hits in _read_run(work / "runs" / name).items():
            for rank, (d, _) in enumerate(_top(dict(hits), 1000), 1):
                fused.setdefault(qid, {}).setdefault(d, 0.0)
                fused[qid][d] += 1.0 / (60 + rank)
    reference = {q: _top(s, 1000) for q, s in fused.items()}
    run = _read_run(work / "runs" / "run.cacm.rrf60.txt")
    assert run.keys() == reference.keys()
    for qid, hits in run.items():
        assert [d for d, _ in hits] == [d for d, _ in reference[qid]], qid
        assert [s for _, s in hits] == pytest.approx([s for _, s in reference[qid]], rel=1e-8)
    assert stored["cacm-rrf"]["grade"] == MEASURED
    assert stored["cacm-rrf"]["measured"] == pytest.approx(_aggregate(reference, qrels), abs=1e-6)

    grades = []

    class P(HTMLParser):
        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "td" and "grade" in (a.get("class") or "").split():
                grades.append(True)

    P().feed(report.read_text(encoding="utf-8"))
    assert len(grades) == len(m.conditions)  # every condition has a row, those not run included


# ---- the public kinds (docs/models.md) on models the matrix builds offline ------------------------------------

NEW_KINDS = ("cacm-onnx-splade-tiny", "cacm-bge-m3-tiny-random", "cacm-opensearch-tiny-random")


@pytest.fixture(scope="module")
def kinds_work(shared_data, splade_tiny_path, tmp_path_factory):
    """The three public-kind conditions run once, as `repro local --condition ...` runs them."""
    work = tmp_path_factory.mktemp("kinds") / "work"
    argv = ["local", "--work-dir", str(work), "--threads", "2"]
    for name in NEW_KINDS:
        argv += ["--condition", name]
    rc = main(argv)
    return rc, work, json.loads((work / "repro-results.json").read_text())["local"]


def _quantized(floats: dict[str, dict[str, float]]) -> dict[str, dict[str, int]]:
    return {q: {t: int(np.rint(w * SCALE)) for t, w in v.items() if np.rint(w * SCALE) > 0} for q, v in floats.items()}


def _check_brute_force(work: Path, name: str, vectors: str, queries: dict, qrels: Path, stored: dict) -> None:
    reference = _brute_force_run(work / "vectors" / vectors, queries, 1000)
    run = _read_run(work / "runs" / f"run.cacm.{name.removeprefix('cacm-')}.txt")
    assert run.keys() == {q for q, hits in reference.items() if hits}
    for qid, hits in run.items():
        assert hits == reference[qid], (name, qid)
    assert stored[name]["grade"] == MEASURED
    assert stored[name]["measured"] == pytest.approx(_aggregate(reference, qrels), abs=1e-9)


def _read_vectors(vectors_dir: Path) -> dict[str, dict[str, int]]:
    out = {}
    for part in sorted(vectors_dir.glob("part-*.jsonl")):
        for line in part.read_text(encoding="utf-8").splitlines():
            doc = json.loads(line)
            out[doc["id"]] = {t: int(w) for t, w in doc["vector"].items()}
    return out


@pytest.mark.slow
def test_local_matrix_public_kinds(kinds_work, shared_data, splade_tiny_path):
    """ONNX SPLADE-tiny, BGE-M3 and OpenSearch conditions: each run equals brute force over its own vectors;
    the ONNX vectors are the torch encoder's, BGE-M3's are its formula, OpenSearch's queries are IDF lookups
    computed here from idf.json and the tokenizer."""
    from tokenizers import Tokenizer

    from pyserini_splare.corpus import open_corpus
    from pyserini_splare.encode import load_encoder
    from pyserini_splare.index import get_backend, read_index_meta
    from pyserini_splare.search.queries import encode_topics
    from pyserini_splare.topics import get_topics

    rc, work, stored = kinds_work
    assert set(NEW_KINDS) <= set(stored) and rc == 0, stored
    qrels = shared_data / "cacm" / "qrels.cacm.txt"
    topics = get_topics("cacm")
    docs = list(open_corpus(str(shared_data / "cacm" / "cacm.tar.gz")))
    assert len(docs) == 3204

    # ONNX: brute force over its vectors with its own query vectors ...
    onnx = work / "models" / "splade-tiny.onnx"
    index = work / "indexes" / "cacm.onnx-splade-tiny.lucene"
    floats = encode_topics(f"onnx:{onnx}", topics, get_backend("lucene"), read_index_meta(index), batch_size=32)
    _check_brute_force(work, "cacm-onnx-splade-tiny", "cacm.onnx-splade-tiny", _quantized(floats), qrels, stored)
    # ... and those vectors are torch's (SPLADE-tiny, the same 512 tokens) on the first 200 documents: every
    # quantized weight within 1 (a float32 difference can straddle a half quantum), identical on >= 95 %
    torch_enc = load_encoder(f"splade:{splade_tiny_path}", max_length_doc=512, batch_size=32)
    got = _read_vectors(work / "vectors" / "cacm.onnx-splade-tiny")
    ref = torch_enc.encode([d.text for d in docs[:200]], "doc")
    same = 0
    for d, v in zip(docs[:200], ref):
        want = {torch_enc.space.term(int(i)): int(np.rint(w * SCALE)) for i, w in zip(v.ids, v.weights)
                if np.rint(w * SCALE) > 0}
        have = got[d.id]
        assert all(abs(want.get(t, 0) - have.get(t, 0)) <= 1 for t in set(want) | set(have)), d.id
        same += want == have
    assert same >= 190, same

    # BGE-M3: brute force over its vectors ...
    model = work / "models" / "bge-m3-tiny-random"
    index = work / "indexes" / "cacm.bge-m3-tiny-random.lucene"
    floats = encode_topics(f"bge-m3:{model}", topics, get_backend("lucene"), read_index_meta(index), batch_size=32)
    _check_brute_force(work, "cacm-bge-m3-tiny-random", "cacm.bge-m3-tiny-random", _quantized(floats), qrels,
                       stored)
    # ... and the vectors are BGE-M3's formula, max over positions of ReLU(w . h_i + b) per token id, special
    # ids dropped, written out with transformers' XLM-R on the first 20 documents
    import torch
    from transformers import AutoTokenizer, XLMRobertaModel

    tok, xlmr = AutoTokenizer.from_pretrained(model), XLMRobertaModel.from_pretrained(model).eval()
    lin = torch.load(model / "sparse_linear.pt", weights_only=True)
    got = _read_vectors(work / "vectors" / "cacm.bge-m3-tiny-random")
    specials = set(tok.all_special_ids)
    for d in docs[:20]:
        feats = tok(d.text, truncation=True, max_length=512, return_tensors="pt")
        with torch.no_grad():
            h = xlmr(**feats).last_hidden_state[0]
        s = torch.relu(h @ lin["weight"][0] + lin["bias"][0]).tolist()
        want: dict[str, float] = {}
        for t, w in zip(feats["input_ids"][0].tolist(), s):
            if t not in specials:
                want[f"t{t}"] = max(want.get(f"t{t}", 0.0), w)
        want_q = {t: int(np.rint(w * SCALE)) for t, w in want.items() if np.rint(w * SCALE) > 0}
        have = got[d.id]
        assert have and all(abs(want_q.get(t, 0) - have.get(t, 0)) <= 1 for t in set(want_q) | set(have)), d.id

    # OpenSearch: queries are idf.json lookups of their distinct tokens (computed here, not by the encoder)
    model = work / "models" / "opensearch-tiny-random"
    idf = json.loads((model / "idf.json").read_text())
    tk = Tokenizer.from_file(str(model / "tokenizer.json"))
    queries = {}
    for qid, text in topics.items():
        toks = set(tk.encode(text, add_special_tokens=False).tokens)
        queries[qid] = {t: int(np.rint(idf[t] * SCALE)) for t in toks if t in idf and np.rint(idf[t] * SCALE) > 0}
    _check_brute_force(work, "cacm-opensearch-tiny-random", "cacm.opensearch-tiny-random", queries, qrels, stored)
