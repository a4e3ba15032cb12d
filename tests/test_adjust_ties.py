"""adjust_ties (Anserini's tie rule for BM25 scores) against the same rule written with numpy float32 scalars."""

from __future__ import annotations

import random

import numpy as np

from pyserini_splare.search.lucene import adjust_ties


def _numpy_reference(scores: list[str]) -> list[float]:
    """The rule as first written (and checked on all 58,571 hits of CACM's 64 topics against Anserini 1.7)."""
    out: list[float] = []
    e6, gap = np.float32(1e-6), np.float32(1e-4)
    prev = np.float32(0)
    dup = 0
    for i, text in enumerate(scores):
        s = np.float32(np.floor(np.float64(np.float32(text)) * 1e4 + 0.5) / 1e4)
        if i == 0 or prev - s > gap:
            dup = 0
        else:
            dup += 1
            s = np.float32(s - e6 * np.float32(dup))
        prev = s
        out.append(float(s))
    return out


def test_adjust_ties_equals_the_numpy_float32_rule_on_runs_with_ties_and_near_ties():
    rng = random.Random(7)
    tied = 0
    for _ in range(3000):
        vals = []
        for _ in range(rng.randint(1, 25)):
            b = np.float32(rng.uniform(0, 40) if rng.random() < 0.9 else rng.uniform(0, 1e-3))
            vals.append(b)
            for _ in range(rng.choice([0, 0, 1, 3])):  # runs of ties and of scores 1e-5 .. 2e-4 apart
                vals.append(np.float32(b + np.float32(rng.choice([0, 1e-5, 5e-5, 1e-4, 1.5e-4, 2e-4]))))
        vals.sort(reverse=True)
        texts = [str(v) for v in vals]  # float32's shortest text, as Java's Float.toString writes it
        got = adjust_ties(texts)
        assert got == _numpy_reference(texts), texts
        tied += len(set(got)) < len(got) or len(texts) > len(set(texts))
    assert tied > 300  # the tie branch ran
    assert adjust_ties([]) == []
