"""repro wsdm26 --plan: the arithmetic of docs/wsdm26-reproduction.md (its published table is the reference:
SPLARE-7B 55-88 H100-hours, 13.1 GFLOP/token, 64/56 GB of vectors, 164 GB of Qwen3 embeddings), bad flags."""

from __future__ import annotations

import pytest

from pyserini_splare.repro.__main__ import main
from pyserini_splare.repro.costs import GPUS, UTILISATION, plan_costs
from pyserini_splare.repro.schema import load_matrix
from pyserini_splare.repro.templating import auto_variables, plan


@pytest.fixture(scope="module")
def costs():
    m = load_matrix("wsdm26")
    v = auto_variables()
    return {c.name: c for c in plan_costs(plan(m, v), m, v)}


def _step(costs, cond, prefix):
    return next(c for c in costs[cond].costs if c.step.startswith(prefix))


def test_encode_costs_match_the_documented_arithmetic(costs):
    peak = GPUS["h100"][0]
    for cond, gflop, hours in (("splare-7b", 13.1, (55, 88)), ("splade-8b", 15.3, (64, 102)),
                               ("qwen3-embed-8b", 14.3, (60, 95)), ("milco", 0.71, (3, 5))):
        enc = _step(costs, cond, "encode")
        assert enc.flops == pytest.approx(6e9 * gflop * 1e9, rel=0.01), cond  # tokens x FLOP/token
        lo, hi = (enc.flops / (peak * u) / 3600 for u in UTILISATION)
        assert round(lo) == pytest.approx(hours[0], abs=1) and round(hi) == pytest.approx(hours[1], abs=1), cond


def test_artefact_sizes_match_the_documented_table(costs):
    assert _step(costs, "splare-7b", "encode").disk == pytest.approx(64e9, rel=0.01)  # 4.57B postings x 14 B
    assert _step(costs, "splare-7b-topk", "prune").disk == pytest.approx(56e9, rel=0.01)  # 4.0B postings x 14 B
    q = _step(costs, "qwen3-embed-8b", "index faiss")
    assert q.ram == pytest.approx(10e6 * 4096 * 4, rel=1e-9)  # 164 GB flat fp32
    # Seismic in RAM by the measured rule, written out: 0.431 B per kept posting per term of the mean
    # document + 169 MiB, n_postings=auto keeping 10 % of the mean list (131,072 lists) at this scale
    enc = _step(costs, "splare-7b", "encode")
    docs, l0 = enc.disk / 14 / 457, 457  # the encode step's vectors: docs x 457 postings x 14 B
    kept = 131_072 * round(0.1 * docs * l0 / 131_072)
    assert _step(costs, "splare-7b", "index seismic").ram == pytest.approx(0.431 * kept * l0 + 169 * 2**20, rel=1e-3)
    assert _step(costs, "splare-7b", "index seismic").ram == pytest.approx(90e9, rel=0.01)  # the documented table
    assert _step(costs, "splare-7b-topk", "index seismic").ram == pytest.approx(69e9, rel=0.01)
    assert _step(costs, "run1-rerank-d100", "rerank").flops == pytest.approx(41 * 100 * 700 * (2 * 3.636e9 + 4 * 36 * 700 * 2560), rel=1e-3)


def test_shared_steps_are_counted_once(costs):
    # RUN1's vectors are built by splare-7b; splare-7b-topk requires it and prunes them (no second encode)
    assert not any(c.step.startswith("encode") for c in costs["splare-7b-topk"].costs)


@pytest.mark.slow
def test_cli_plan_and_bad_flags(capsys):
    assert main(["wsdm26", "--plan", "--gpus", "8", "--gpu", "h100"]) == 0
    out = capsys.readouterr().out
    assert "splare-7b" in out and "55-88" in out and "measured here:" in out and "h100-hours" in out
    for bad, msg in ((["--gpus", "0"], "--gpus must be >= 1"), (["--gpu", "x100"], "--gpu 'x100'")):
        assert main(["wsdm26", "--plan", *bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and msg in err and err.count("\n") == 1
