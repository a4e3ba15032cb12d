"""BM25 (positional) Lucene indexes of raw text, through Anserini's ``IndexCollection`` in this process.

Any Anserini collection class, stored as Anserini's regressions index them. One index over the whole
collection: BM25 scores use collection statistics, so shards could not be searched as one.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .._errors import UsageError
from .._outputs import atomic_dir


def build_bm25_index(inputs, index, *, threads: int = 1, overwrite: bool = False, **options) -> dict:
    """Build a BM25 index of the collection folder ``inputs`` (one folder); ``options`` are the bm25
    backend's build options (:class:`pyserini_splare.backends.Bm25Build`)."""
    from .._java import jclass, run_anserini_tool
    from ..backends import get_backend
    from ..formats.index_meta import write_index_meta

    o = get_backend("bm25").check_build_options(options)
    if not isinstance(inputs, (str, os.PathLike)):
        if len(inputs) != 1:
            raise UsageError(f"a BM25 index is built from one collection folder, got {len(inputs)}: its scores use "
                             "the whole collection's statistics (put the files in one folder)")
        inputs = inputs[0]
    folder, collection = str(inputs), o["collection"]
    if not Path(folder).is_dir():
        raise UsageError(f"collection folder {folder} does not exist or is not a directory")
    if not collection.replace("_", "").isalnum():
        raise UsageError(f"bad collection class {collection!r}")
    if threads < 1:
        raise UsageError(f"threads must be >= 1, got {threads}")
    t0 = time.time()
    with atomic_dir(index, overwrite=overwrite) as tmp:
        args = ["-collection", collection, "-input", folder, "-index", str(tmp),
                "-generator", "DefaultLuceneDocumentGenerator", "-threads", str(threads),
                "-storePositions", "-storeDocvectors", "-storeRaw"]
        if o["language"]:
            args += ["-language", o["language"]]
        if o["optimize"]:
            args.append("-optimize")
        run_anserini_tool("io.anserini.index.IndexCollection", args)
        reader = jclass("io.anserini.index.IndexReaderUtils").getReader(str(tmp))
        n_docs = int(reader.numDocs())
        reader.close()
        if n_docs == 0:
            raise UsageError(f"no documents indexed from {folder} with collection class {collection}")
        meta = write_index_meta(tmp, "bm25", source=str(Path(folder).resolve()), collection=collection,
                                language=o["language"] or "en",
                                build={"threads": threads, "seconds": round(time.time() - t0, 2), "documents": n_docs})
    return meta
