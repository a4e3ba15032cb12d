"""A faiss index folder's files: ``index.faiss`` (``faiss.write_index``), ``docids.txt`` (:mod:`.docids`)
and the index metadata with the dense vectors' metadata.

Owned here, below both stages: the index stage writes the folder, the search stage loads it.
"""

FAISS_FILE = "index.faiss"
