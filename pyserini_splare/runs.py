"""Re-export of :mod:`pyserini_splare.formats.runs` (TREC run files), kept while importers move."""

from .formats.runs import Run, ranked, read_trec_run, write_run

__all__ = ["Run", "ranked", "read_trec_run", "write_run"]
