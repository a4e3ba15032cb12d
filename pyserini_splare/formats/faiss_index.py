"""A faiss index folder's files: ``index.faiss`` (``faiss.write_index``), ``docids.npy`` (:mod:`.docids`,
the one docid table every backend shares) and the index metadata with the dense vectors' metadata.

Owned here, below both stages: the index stage writes the folder, the search stage loads it.
"""

from __future__ import annotations

import os
from pathlib import Path

from .._errors import UsageError
from .docids import DOCIDS_FILE

FAISS_FILE = "index.faiss"

# Folders built before faiss moved onto docids.npy hold their ids in this file. It is never read (one
# reader of docid tables, :mod:`.docids`): it is only recognised, so that such a folder is refused with
# the command that rebuilds it rather than a bare "missing docid table".
OLD_DOCIDS_FILE = "docids.txt"


def check_faiss_folder(index_dir: str | os.PathLike) -> None:
    """Refuse a faiss folder of the old layout (``docids.txt``, no ``docids.npy``) with one line naming
    the rebuild; called before ``index.faiss`` is read, which can take minutes at NeuCLIR1 scale."""
    d = Path(index_dir)
    if (d / OLD_DOCIDS_FILE).is_file() and not (d / DOCIDS_FILE).is_file():
        raise UsageError(f"{d}: faiss index of an older layout ({OLD_DOCIDS_FILE}, no {DOCIDS_FILE}); rebuild it "
                         f"from its vectors: python -m pyserini_splare.index --backend faiss --input VECTORS "
                         f"--index {d} --overwrite")
