"""The training losses equal their formulas, written out here on a hand-made batch (plain Python math)."""

from __future__ import annotations

import math

import pytest

import torch  # noqa: E402  (a required dependency: imported, not skipped)

from pyserini_splare.train.losses import LossConfig, build_loss  # noqa: E402

# B = 2 queries, 4 features; one positive and two negatives each; teacher scores per (pos, neg1, neg2).
Q = [[1.0, 0.0, 2.0, 0.0], [0.0, 1.5, 0.0, 0.5]]
P = [[0.5, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0]]
N1 = [[0.0, 1.0, 0.5, 0.0], [0.2, 0.0, 0.0, 1.0]]
N2 = [[1.0, 0.0, 0.0, 0.0], [0.0, 0.5, 1.0, 0.0]]
T = [[3.0, 1.0, 0.5], [2.0, 2.5, -1.0]]


class Passthrough(torch.nn.Module):
    """A 'model' whose embeddings are given: the loss sees exactly the hand-made vectors."""

    def forward(self, features):
        return {"sentence_embedding": features["emb"]}


def dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def softmax(xs):
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    return [x / sum(e) for x in e]


def flops(vectors):
    n = len(vectors)
    return sum((sum(v[j] for v in vectors) / n) ** 2 for j in range(len(vectors[0])))


def student(b):
    return [dot(Q[b], P[b]), dot(Q[b], N1[b]), dot(Q[b], N2[b])]


def kl_formula(tau):
    total = 0.0
    for b in range(2):
        p = softmax([t / tau for t in T[b]])
        s = softmax([x / tau for x in student(b)])
        total += sum(pi * (math.log(pi) - math.log(si)) for pi, si in zip(p, s))
    return tau ** 2 * total / 2


def marginmse_formula():
    errs = [((student(b)[0] - student(b)[k]) - (T[b][0] - T[b][k])) ** 2 for b in range(2) for k in (1, 2)]
    return sum(errs) / len(errs)


def infonce_formula(tau):
    docs = P + N1 + N2  # every positive and negative of the batch
    total = 0.0
    for b in range(2):
        logits = [dot(Q[b], d) / tau for d in docs]
        total += -(logits[b] - math.log(sum(math.exp(x) for x in logits)))
    return total / 2


def run(cfg: LossConfig):
    loss, callbacks = build_loss(Passthrough(), cfg)
    feats = [{"emb": torch.tensor(x, dtype=torch.float64)} for x in (Q, P, N1, N2)]
    parts = loss(feats, torch.tensor(T, dtype=torch.float64))
    return {k: float(v) for k, v in parts.items()}, callbacks


def regularizers(lq, ld):
    return lq * flops(Q), ld * flops(P + N1 + N2)


@pytest.mark.parametrize("tau", [1.0, 2.0, 80.0])
def test_kl_equals_formula_and_tau_changes_it_as_written(tau):
    parts, _ = run(LossConfig(loss="kl", temperature=tau, flops_query=0.0, flops_doc=0.0, flops_warmup=0))
    assert parts["base_loss"] == pytest.approx(kl_formula(tau), rel=1e-9, abs=1e-12)


def test_kl_temperatures_differ():
    assert kl_formula(1.0) != pytest.approx(kl_formula(80.0))


def test_marginmse_equals_formula():
    parts, _ = run(LossConfig(loss="marginmse", flops_query=0.0, flops_doc=0.0, flops_warmup=0))
    assert parts["base_loss"] == pytest.approx(marginmse_formula(), rel=1e-9)


@pytest.mark.parametrize("tau", [1.0, 0.5, 4.0])
def test_infonce_in_batch_and_given_negatives_equals_formula(tau):
    parts, _ = run(LossConfig(loss="infonce", temperature=tau, flops_query=0.0, flops_doc=0.0, flops_warmup=0))
    assert parts["base_loss"] == pytest.approx(infonce_formula(tau), rel=1e-9)


@pytest.mark.parametrize("lq,ld", [(1e-4, 1e-4), (1e-3, 1e-5), (0.5, 2.0)])
def test_flops_terms_equal_formula_and_scale_with_lambda(lq, ld):
    parts, _ = run(LossConfig(loss="kl", temperature=2.0, flops_query=lq, flops_doc=ld, flops_warmup=0))
    rq, rd = regularizers(lq, ld)
    assert parts["query_regularizer_loss"] == pytest.approx(rq, rel=1e-9)
    assert parts["document_regularizer_loss"] == pytest.approx(rd, rel=1e-9)
    assert parts["base_loss"] == pytest.approx(kl_formula(2.0), rel=1e-9)


def test_lambda_warmup_is_quadratic_over_the_first_fraction():
    from types import SimpleNamespace

    cfg = LossConfig(loss="kl", temperature=2.0, flops_query=1e-2, flops_doc=3e-2, flops_warmup=0.5)
    loss, callbacks = build_loss(Passthrough(), cfg)
    (cb,) = callbacks
    state = SimpleNamespace(max_steps=100, global_step=0)
    cb.on_train_begin(None, state, None)
    for step in (0, 10, 25, 49, 50, 80):
        state.global_step = step
        cb.on_step_begin(None, state, None)
        ratio = min(step / 50, 1.0)
        assert loss.query_regularizer_weight == pytest.approx(1e-2 * ratio ** 2)
        assert loss.document_regularizer_weight == pytest.approx(3e-2 * ratio ** 2)


def test_bad_settings_name_the_allowed_values():
    with pytest.raises(ValueError, match="kl, marginmse, infonce"):
        LossConfig(loss="mse")
    with pytest.raises(ValueError, match="temperature"):
        LossConfig(temperature=0)
