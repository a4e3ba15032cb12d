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


ALLOW_DISJOINT_HINT = "--allow-disjoint scores it anyway, every judged query 0"


def check_overlap(qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]]) -> None:
    """UsageError when ``run`` shares no query id, or no document id, with ``qrels``: a run of another
    collection (CACM against NeuCLIR qrels) would otherwise score 0 on everything, which reads as a bad
    system rather than the wrong qrels."""
    shared = set(run) & set(qrels)
    if not shared:
        raise UsageError(f"the run shares no query id with the qrels (wrong qrels for this run?; "
                         f"{ALLOW_DISJOINT_HINT})")
    judged = {d for docs in qrels.values() for d in docs}
    retrieved = [d for q in sorted(shared) for d in run[q]]
    if not any(d in judged for d in retrieved):
        example = f" (e.g. {retrieved[0]!r}; the qrels judge {min(judged)!r}, ...)" if retrieved else ""
        raise UsageError(f"the run shares no document id with the qrels: none of its {len(retrieved):,} results for "
                         f"the {len(shared)} queries they share is judged{example}; a run of another collection? "
                         f"({ALLOW_DISJOINT_HINT})")


def evaluate(qrels: str | Mapping[str, Mapping[str, int]], run: str | Mapping[str, Mapping[str, float]], metrics: Sequence[str] = DEFAULT_METRICS, *,
             per_query: bool = False, data_dir: str | None = None, allow_disjoint: bool = False):
    """Evaluate ``run`` (a path or ``{qid: {docid: score}}``) against ``qrels`` (registry name, file, or
    ``{qid: {docid: grade}}``).

    Returns ``{metric: value}``, means over every judged query (``trec_eval -c``, docs/evaluation.md), or with
    ``per_query`` a list of ``(metric, qid, value)``. A run disjoint from the qrels is refused
    (:func:`check_overlap`) unless ``allow_disjoint``.
    """
    import ir_measures

    from ..topics import get_qrels

    measures = parse_metrics(metrics)
    qrels_obj = get_qrels(qrels, data_dir).judgments if isinstance(qrels, str) else qrels
    run_obj = read_trec_run(run) if not isinstance(run, Mapping) else run
    if not allow_disjoint:
        check_overlap(qrels_obj, run_obj)
    if per_query:
        return [(str(m.measure), m.query_id, float(m.value)) for m in ir_measures.iter_calc(measures, qrels_obj, run_obj)]
    agg = ir_measures.calc_aggregate(measures, qrels_obj, run_obj)
    return {str(m): float(agg[m]) for m in measures}
