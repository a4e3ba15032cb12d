"""Lucene indexes through Anserini's ``IndexCollection``, in-process (pyjnius), no server.

* Impact indexes from a vectors directory (``JsonVectorCollection -impact -pretokenized``): each
  term's integer weight becomes its term frequency, and Anserini's impact similarity scores a
  document by the dot product of the query's and the document's integer weights.
* BM25 indexes of raw text in any Anserini collection class (JsonCollection, HtmlCollection,
  TrecCollection, ...), with positions, document vectors and raw text stored, as Anserini's
  regressions index them.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from .._cli import UsageError, atomic_dir
from ..vectors import part_files, read_meta, validate_vectors_dir
from ._meta import write_index_meta


def _index_collection(args: list[str]) -> None:
    from .._java import jclass

    try:
        jclass("io.anserini.index.IndexCollection").main(args)
    except Exception as e:  # jnius.JavaException: keep the Java message, drop the Java trace
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(f"Anserini IndexCollection failed: {msg}") from None


def build_impact_index(input: str, index: str, *, threads: int = 1, optimize: bool = False,
                       validate: bool = True, overwrite: bool = False, **_ignored) -> dict:
    """Build a Lucene impact index from a vectors directory."""
    vmeta = read_meta(input)
    parts = part_files(input)
    n_docs = n_post = None
    if validate:
        n_docs, n_post, _ = validate_vectors_dir(input)
    if threads > len(parts):
        # Anserini gives each input file to one thread: more threads than files sit idle.
        print(f"note: {input} has {len(parts)} part file(s); Anserini indexes one file per thread, so at most "
              f"{len(parts)} of the {threads} threads will work (write smaller parts to index faster)", file=sys.stderr)
    t0 = time.time()
    with atomic_dir(index, overwrite=overwrite) as tmp:
        # Anserini's JsonVectorCollection reads every *.json(l) in its input folder, meta.json
        # included: give it a folder holding only links to the part files.
        src = tmp / "_input"
        src.mkdir()
        for p in parts:
            os.symlink(p.resolve(), src / p.name)
        _index_collection([
            "-collection", "JsonVectorCollection", "-input", str(src), "-index", str(tmp),
            "-generator", "DefaultLuceneDocumentGenerator", "-threads", str(threads),
            "-impact", "-pretokenized", *(["-optimize"] if optimize else []),
        ])
        for p in src.iterdir():
            p.unlink()
        src.rmdir()
        meta = write_index_meta(tmp, "lucene", vectors=vmeta.to_json(), source=str(Path(input).resolve()),
                                build={"threads": threads, "optimize": optimize, "seconds": round(time.time() - t0, 2),
                                       "documents": n_docs, "postings": n_post})
    return meta


def build_bm25_index(input: str, index: str, *, collection: str = "JsonCollection", threads: int = 1,
                     language: str | None = None, optimize: bool = False, overwrite: bool = False,
                     **_ignored) -> dict:
    """Build a BM25 (positional) Lucene index of a raw-text collection, as Anserini's regressions do."""
    if not Path(input).is_dir():
        raise UsageError(f"collection folder {input} does not exist or is not a directory")
    if not collection.replace("_", "").isalnum():
        raise UsageError(f"bad collection class {collection!r}")
    t0 = time.time()
    with atomic_dir(index, overwrite=overwrite) as tmp:
        args = ["-collection", collection, "-input", str(input), "-index", str(tmp),
                "-generator", "DefaultLuceneDocumentGenerator", "-threads", str(threads),
                "-storePositions", "-storeDocvectors", "-storeRaw"]
        if language:
            args += ["-language", language]
        if optimize:
            args.append("-optimize")
        _index_collection(args)
        from .._java import jclass

        reader = jclass("io.anserini.index.IndexReaderUtils").getReader(str(tmp))
        n_docs = int(reader.numDocs())
        reader.close()
        if n_docs == 0:
            raise UsageError(f"no documents indexed from {input} with collection class {collection}")
        meta = write_index_meta(tmp, "bm25", source=str(Path(input).resolve()), collection=collection,
                                language=language or "en",
                                build={"threads": threads, "seconds": round(time.time() - t0, 2), "documents": n_docs})
    return meta
