"""Bag-of-concepts explanations of sparse representations (SPLARE paper, Tables 1 and 9).

In a notebook::

    from pyserini_splare.explain import explain_vector, format_rows, load_labels
    rows = explain_vector(vector, space, load_labels("llama-scope-l26.json"), top=10)
    print(format_rows(rows))

``python -m pyserini_splare.explain`` does the same from the command line (see ``--help``).
"""

from .concepts import NO_LABEL, Row, explain_vector, format_rows, load_labels

__all__ = ["NO_LABEL", "Row", "explain_vector", "format_rows", "load_labels"]
