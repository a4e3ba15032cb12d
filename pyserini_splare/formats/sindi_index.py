"""A SINDI index folder's files, and the library that reads them (VSAG's ``pyvsag``, optional).

``index.sindi`` (``pyvsag.Index.save``), ``docids.npy`` and the index metadata with ``sindi_params`` (the
parameters the file must be loaded with). Owned here, below both stages, because the index stage writes
the folder and the search stage loads it.
"""

from __future__ import annotations

from .._errors import UsageError

INDEX_FILE = "index.sindi"


def import_pyvsag():
    """``pyvsag``, or one UsageError line saying how to install it (an optional dependency)."""
    try:
        import pyvsag
    except ModuleNotFoundError:
        raise UsageError("the sindi backend needs the package 'pyvsag': "
                         "pip install pyvsag==0.18.5 (or pyserini_splare[sindi])") from None
    return pyvsag
