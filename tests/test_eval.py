"""Evaluation: ir_measures through our CLI vs pytrec_eval (trec_eval's code) and nDCG written out."""

import math
import random

import pytest

from pyserini_splare.eval import evaluate
from pyserini_splare.eval.__main__ import main as eval_main
from pyserini_splare.topics import get_qrels


@pytest.fixture(scope="module")
def wsdm_run(shared_data, tmp_path_factory):
    """A run made by the test: for each dev query, judged docs (some) and unjudged docs, shuffled scores."""
    rng = random.Random(7)
    qrels = get_qrels("neuclir").judgments
    path = tmp_path_factory.mktemp("eval") / "run.txt"
    run = {}
    with open(path, "w") as f:
        for qid in sorted(qrels)[:-3]:  # three judged queries are left out of the run
            docs = list(qrels[qid])
            rng.shuffle(docs)
            picked = docs[:60] + [f"unjudged-{qid}-{i}" for i in range(20)]
            scores = {d: rng.random() for d in picked}
            run[qid] = scores
            for rank, (d, s) in enumerate(sorted(scores.items(), key=lambda x: -x[1]), 1):
                f.write(f"{qid} Q0 {d} {rank} {s:.8f} test\n")
    return path, run, qrels


def test_ndcg20_per_query_equals_pytrec_eval(wsdm_run):
    import pytrec_eval

    path, _, qrels = wsdm_run
    ours = {qid: v for m, qid, v in evaluate("neuclir", str(path), ["nDCG@20"], per_query=True)}
    run = {}
    for line in open(path):
        q, _, d, _, s, _ = line.split()
        run.setdefault(q, {})[d] = float(s)
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.20"}).evaluate(run)
    # pytrec_eval scores the run's 38 queries; we also report the 3 judged queries the run lacks (as 0)
    assert len(ref) == 38 and set(ours) == set(qrels) and len(ours) == 41
    for qid in ref:
        assert ours[qid] == pytest.approx(ref[qid]["ndcg_cut_20"], abs=1e-9)


def test_ndcg20_equals_formula_written_out(wsdm_run):
    path, run, qrels = wsdm_run
    ours = {qid: v for m, qid, v in evaluate("neuclir", str(path), ["nDCG@20"], per_query=True)}
    for qid in list(run)[:5]:
        # trec_eval: ranking by score desc (ties by docid desc), gain = grade, discount log2(rank + 1)
        ranked = sorted(run[qid].items(), key=lambda x: (-x[1], x[0]))[:20]
        dcg = sum(qrels[qid].get(d, 0) / math.log2(i + 2) for i, (d, _) in enumerate(ranked))
        ideal = sorted((g for g in qrels[qid].values() if g > 0), reverse=True)[:20]
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
        assert ours[qid] == pytest.approx(dcg / idcg, abs=1e-9)


def test_missing_queries_count_as_zero_in_the_mean(wsdm_run):
    path, run, qrels = wsdm_run
    per_q = {qid: v for m, qid, v in evaluate("neuclir", str(path), ["nDCG@20"], per_query=True)}
    assert all(per_q[q] == 0 for q in set(qrels) - set(run))
    mean = evaluate("neuclir", str(path), ["nDCG@20"])["nDCG@20"]
    assert mean == pytest.approx(sum(per_q.values()) / 41, abs=1e-12)


def test_cli_lines_and_default_metrics(wsdm_run, capsys):
    path, _, _ = wsdm_run
    assert eval_main(["--qrels", "neuclir", "--run", str(path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [ln.split("\t")[0] for ln in lines] == ["nDCG@20", "R@100", "R@1000", "Judged@20"]
    assert all(ln.split("\t")[1] == "all" for ln in lines)
    assert eval_main(["--qrels", "neuclir", "--run", str(path), "--metrics", "nDCG@20", "--per-query"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 41 + 1


@pytest.mark.parametrize("content, msg", [
    ("1 Q0 d1 1 0.5\n", "not a TREC run line"),
    ("1 Q0 d1 x 0.5 tag\n", "rank must be an integer"),
    ("", "is empty"),
    ("1 Q0 d1 1 0.5 t\n1 Q0 d1 2 0.4 t\n", "appears twice"),
])
def test_bad_runs_exit_2(tmp_path, capsys, content, msg, shared_data):
    p = tmp_path / "run.txt"
    p.write_text(content)
    assert eval_main(["--qrels", "neuclir", "--run", str(p)]) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1


def test_unknown_metric_exit_2(wsdm_run, capsys):
    path, _, _ = wsdm_run
    assert eval_main(["--qrels", "neuclir", "--run", str(path), "--metrics", "nDGC@20"]) == 2
    assert "unknown metric" in capsys.readouterr().err
