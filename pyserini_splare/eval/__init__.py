"""Evaluation with ir_measures (nDCG@20 is the metric of record for the WSDM Cup).

``python -m pyserini_splare.eval --qrels NAME|FILE --run RUN [--metrics ...] [--per-query]`` prints
trec_eval-like lines ``metric<TAB>qid-or-all<TAB>value``; in Python, :func:`evaluate`.
"""

from .measures import DEFAULT_METRICS, evaluate, parse_metrics

__all__ = ["DEFAULT_METRICS", "evaluate", "parse_metrics"]
