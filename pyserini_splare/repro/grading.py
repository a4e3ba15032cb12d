"""Grading measured scores against a matrix's expected ones: OK, OKish, FAIL, not run, or "measured"
(nothing published to compare with). Tolerances and why: docs/2cr.md.
"""

from __future__ import annotations

from typing import Mapping

OK, OKISH, FAIL, NOT_RUN, MEASURED = "OK", "OKish", "FAIL", "not run", "measured"
GRADE_ORDER = {OK: 0, OKISH: 1, FAIL: 2}
DEFAULT_TOLERANCE = {"ok": 0.0005, "okish": 0.005}


def grade(expected: Mapping[str, float], measured: Mapping[str, float] | None, tolerance: Mapping[str, float]) -> str:
    """The worst per-metric grade: OK (|Δ| <= ok), OKish (<= okish), FAIL; ``not run`` without measurements,
    ``measured`` without expected scores."""
    if not measured:
        return NOT_RUN
    if not expected:
        return MEASURED
    worst = OK
    for metric, exp in expected.items():
        if metric not in measured:
            return FAIL
        # round away float noise so a score printed at 4 decimals grades as it reads
        delta = round(abs(measured[metric] - exp), 10)
        g = OK if delta <= tolerance["ok"] else OKISH if delta <= tolerance["okish"] else FAIL
        if GRADE_ORDER[g] > GRADE_ORDER[worst]:
            worst = g
    return worst


def scores_text(measured: Mapping[str, float], expected: Mapping[str, float], label: str = "expected ") -> str:
    """``AP 0.3125 (expected 0.3123), P@30 0.1942 (expected 0.1942)``; a metric without an expected score
    shows its measurement alone (never "expected nan")."""
    return ", ".join(f"{m} {v:.4f}" + (f" ({label}{expected[m]:.4f})" if m in expected else "")
                     for m, v in measured.items())
