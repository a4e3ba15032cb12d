"""Evaluation of TREC runs with ir_measures (nDCG@20 is the metric of record for the WSDM Cup).

Measures are ir_measures objects parsed from their names (``nDCG@20``, ``AP``, ``Judged@20``); the
aggregate is ir_measures' own (``calc_aggregate``), a mean over every query of the qrels as
``trec_eval -c`` computes it.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from .._errors import UsageError
from ..formats.runs import read_trec_run

DEFAULT_METRICS = ("nDCG@20", "R@100", "R@1000", "Judged@20")


def parse_metrics(names: Iterable[str]):
    """ir_measures measure objects from strings (``nDCG@20``, ``AP``, ``P@30``, ``Judged@20``, ...)."""
    import ir_measures

    out = []
    for name in names:
        try:
            out.append(ir_measures.parse_measure(name))
        except (ValueError, NameError, SyntaxError, TypeError, AttributeError):
            raise UsageError(f"unknown metric {name!r} (ir_measures names such as nDCG@20, AP, P@30, R@1000, "
                             f"RR@10, Judged@20)") from None
    return out


def evaluate(qrels: str, run: str | Mapping[str, Mapping[str, float]], metrics: Sequence[str] = DEFAULT_METRICS, *,
             per_query: bool = False, data_dir: str | None = None):
    """Evaluate ``run`` (a path or ``{qid: {docid: score}}``) against ``qrels`` (registry name or file).

    Returns ``{metric: value}``, the mean over every query of the qrels (``trec_eval -c``: a judged
    query missing from the run counts as 0, as in official evaluations; run queries without
    judgments are ignored), or with ``per_query`` a list of ``(metric, qid, value)``.
    """
    import ir_measures

    from ..topics import get_qrels

    measures = parse_metrics(metrics)
    qrels_obj = get_qrels(qrels, data_dir).judgments
    run_obj = read_trec_run(run) if not isinstance(run, Mapping) else run
    if not set(run_obj) & set(qrels_obj):
        raise UsageError("the run shares no query id with the qrels (wrong qrels for this run?)")
    if per_query:
        return [(str(m.measure), m.query_id, float(m.value)) for m in ir_measures.iter_calc(measures, qrels_obj, run_obj)]
    agg = ir_measures.calc_aggregate(measures, qrels_obj, run_obj)
    return {str(m): float(agg[m]) for m in measures}
