"""An exact index folder's files: ``postings.npz`` (a scipy CSR matrix, features x documents, of the
integer impacts; ``save_npz``, no pickle), ``docids.npy`` (:mod:`.docids`) and the index metadata.

Owned here, below both stages: the index stage writes the folder, the search stage loads it.
"""

POSTINGS_FILE = "postings.npz"
