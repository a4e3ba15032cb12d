"""A Seismic index folder's files, and the classes of Seismic's library (``pyseismic-lsr``) that read them.

``index.index.seismic`` (what ``SeismicIndex.save("index")`` writes; the document ids are stored in it) and
the index metadata with ``variant`` ("" or "LV", the class that wrote the file: the reader must use the same one).
Owned here, below both stages, because the index stage writes the folder and the search stage loads it.
"""

from __future__ import annotations

import contextlib
import os
import sys

INDEX_PREFIX = "index"  # Seismic's save(prefix) writes PREFIX.index.seismic
INDEX_FILE = INDEX_PREFIX + ".index.seismic"

# u16 component ids: Seismic's default classes hold at most this many distinct components.
U16_MAX_COMPONENTS = 65_535


@contextlib.contextmanager
def quiet_stdout():
    """Send what Seismic's Rust code prints on file descriptor 1 to stderr (stdout stays for results)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # pytest capture etc.: nothing to redirect
        yield
        return
    sys.stdout.flush()
    saved = os.dup(fd)
    try:
        os.dup2(sys.stderr.fileno(), fd)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, fd)
        os.close(saved)


def seismic_classes(n_features: int):
    """``(variant, IndexClass, DatasetClass)`` for a feature space of ``n_features`` terms
    (``SeismicIndex`` holds at most 65,535 components; ``SeismicIndexLV`` the rest)."""
    import seismic

    if n_features > U16_MAX_COMPONENTS:
        return "LV", seismic.SeismicIndexLV, seismic.SeismicDatasetLV
    return "", seismic.SeismicIndex, seismic.SeismicDataset
