"""Bag-of-concepts explanations of sparse representations (SPLARE paper, Tables 1 and 9; docs/explain.md).

:func:`explain_vector`, :func:`format_rows` and :func:`load_labels` in Python; ``python -m
pyserini_splare.explain`` from the command line.
"""

from .concepts import NO_LABEL, Row, explain_vector, format_rows, load_labels

__all__ = ["NO_LABEL", "Row", "explain_vector", "format_rows", "load_labels"]
