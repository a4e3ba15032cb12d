"""Run fusion through ranx: RRF (the WSDM Cup 2026 RUN2 and RUN5) and ranx's score-based methods.

``python -m pyserini_splare.fusion --runs A B --method rrf --rrf.k 10 --output RUN`` (see ``--help``);
in Python, :func:`fuse_runs` on ``{qid: {docid: score}}`` dicts. ranx is imported lazily.
"""

from .fuse import METHODS, NORMS, FusionReport, fuse_runs

__all__ = ["METHODS", "NORMS", "FusionReport", "fuse_runs"]
