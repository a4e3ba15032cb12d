"""Lucene indexes, built in-process through pyjnius (no server).

Impact indexes (learned sparse vectors): each document's integer weight ``w`` of term ``t`` becomes
the frequency of ``t`` in field ``contents``, and Anserini's ``ImpactSimilarity`` scores a document
by the dot product of the query's and the document's integer weights. Two builders write the same
index (Anserini's field names and types, so Pyserini's ``LuceneImpactSearcher``, Anserini's
``SimpleImpactSearcher`` and :class:`pyserini_splare.search.lucene.ImpactSearcher` all read it):

* ``method="termfreq"`` (default): Python drives Lucene's ``IndexWriter`` directly. Each document's
  vector goes in as one string ``t1<SOH>w1 t2<SOH>w2 ...`` through an analyzer of Lucene's whitespace
  tokenizer and its ``DelimitedTermFrequencyTokenFilter``, which sets the term's frequency to ``w``.
  The cost is one token per posting whatever the weights: independent of the quantization scale.
  ``threads=N`` runs N writers (the in-process one and N-1 spawned processes, each with its own JVM)
  on disjoint part files; their segments are then added to one index (``IndexWriter.addIndexes``).
* ``method="anserini"``: Anserini's ``IndexCollection -collection JsonVectorCollection -impact
  -pretokenized``, which writes term ``t`` ``w`` times into a pseudo-document (cost linear in the
  scale: 1M pooled SPLARE-shaped documents at scale 10 took 1,422 s here). Kept as the reference the
  tests compare against.

Fields (as Anserini's ``DefaultLuceneDocumentGenerator`` writes them with ``-impact -pretokenized``):
``id`` -- ``StringField`` (indexed as one term, stored) plus a ``BinaryDocValuesField`` (the searchers
break score ties by it); ``contents`` -- tokenized, not stored, ``IndexOptions.DOCS_AND_FREQS``, norms
kept (computed by ``ImpactSimilarity`` from the field length, which Lucene counts as the sum of the
frequencies either way). Nothing else is stored.

BM25 indexes of raw text go through Anserini's ``IndexCollection`` (any collection class), with
positions, document vectors and raw text stored, as Anserini's regressions index them.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from .._cli import UsageError, atomic_dir

IMPACT_METHODS = ("termfreq", "anserini")
# The term/frequency delimiter: a control character, which no term of a vectors directory can hold
# (formats.spaces.safe_term: printable, no whitespace), unlike "|" (a BERT vocabulary token).
TF_DELIMITER = "\x01"
DEFAULT_RAM_BUFFER_MB = 256
DEFAULT_WORKER_HEAP = "2g"

_FIELD_SIG = "(Ljava/lang/String;Ljava/lang/CharSequence;Lorg/apache/lucene/index/IndexableFieldType;)V"


def _index_collection(args: list[str]) -> None:
    from .._java import anserini_log_args, jclass

    try:
        jclass("io.anserini.index.IndexCollection").main(args + anserini_log_args())
    except Exception as e:  # jnius.JavaException: keep the Java message, drop the Java trace
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(f"Anserini IndexCollection failed: {msg}") from None


def _java_error(what: str, e: Exception) -> UsageError:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return UsageError(f"{what}: {msg}")


def _fs_directory(path):
    from .._java import jclass

    # Paths.get(str) needs its varargs through pyjnius; File.toPath() does not.
    return jclass("org.apache.lucene.store.FSDirectory").open(jclass("java.io.File")(str(path)).toPath())


def _impact_writer(path, ram_buffer_mb: float):
    """An ``IndexWriter`` creating an impact index at ``path`` with the term-frequency analyzer."""
    from .._java import jclass

    params = jclass("java.util.HashMap")()
    params.put("delimiter", TF_DELIMITER)
    analyzer = (jclass("org.apache.lucene.analysis.custom.CustomAnalyzer").builder()
                .withTokenizer("whitespace", jclass("java.util.HashMap")())
                .addTokenFilter("delimitedTermFrequency", params).build())
    cfg = jclass("org.apache.lucene.index.IndexWriterConfig")(analyzer)
    cfg.setSimilarity(jclass("io.anserini.search.similarity.ImpactSimilarity")())
    cfg.setOpenMode(jclass("org.apache.lucene.index.IndexWriterConfig$OpenMode").CREATE)
    cfg.setRAMBufferSizeMB(float(ram_buffer_mb))
    # Segments are merged once at the end (addIndexes / forceMerge), not rewritten as they flush;
    # compound files would copy every flushed segment once more.
    cfg.setUseCompoundFile(False)
    return jclass("org.apache.lucene.index.IndexWriter")(_fs_directory(path), cfg)


class _ImpactDocs:
    """Adds ``(docid, {term: int weight})`` documents to an ``IndexWriter``, reusing one Document and
    its three Field objects (Lucene allows it; it saves 5 of 8 JNI calls per document)."""

    def __init__(self, writer):
        from .._java import jclass

        self.writer = writer
        ft = jclass("org.apache.lucene.document.FieldType")()
        ft.setTokenized(True)
        ft.setStored(False)
        ft.setIndexOptions(jclass("org.apache.lucene.index.IndexOptions").DOCS_AND_FREQS)
        ft.freeze()
        self._BytesRef = jclass("org.apache.lucene.util.BytesRef")
        self.f_id = jclass("org.apache.lucene.document.StringField")(
            "id", "", jclass("org.apache.lucene.document.Field$Store").YES)
        self.f_dv = jclass("org.apache.lucene.document.BinaryDocValuesField")("id", self._BytesRef(b""))
        # Field(String, CharSequence, type): pyjnius cannot choose among Field's 3-argument constructors.
        self.f_contents = jclass("org.apache.lucene.document.Field")("contents", "", ft, signature=_FIELD_SIG)
        self.doc = jclass("org.apache.lucene.document.Document")()
        for f in (self.f_id, self.f_dv, self.f_contents):
            self.doc.add(f)

    def add(self, docid: str, vec: dict) -> int:
        sep = TF_DELIMITER
        text = " ".join([f"{t}{sep}{w}" for t, w in vec.items() if w])  # weight 0: no posting (Anserini: 0 repeats)
        self.f_id.setStringValue(docid)
        self.f_dv.setBytesValue(self._BytesRef(docid.encode("utf-8")))
        self.f_contents.setStringValue(text)
        self.writer.addDocument(self.doc)
        return text.count(sep)


def _index_parts(parts: list[str], out: str, space_meta: dict | None, ram_buffer_mb: float,
                 heap: str | None, show_progress: bool) -> dict:
    """One writer: index ``parts`` (validated line by line) into a new index at ``out``.

    Runs in this process (writer 0) or in a spawned worker process (its own JVM with ``heap``).
    Returns ``{"documents", "postings", "hashes"}`` (int64 id hashes for the duplicate check)."""
    from .._cli import progress
    from .._java import start_jvm
    from ..formats.idhash import IdHashSet
    from ..formats.spaces import FeatureSpace
    from ..formats.vectors_dir import TermTally, iter_jsonl_vectors

    start_jvm(heap)
    space = FeatureSpace.from_meta(space_meta) if space_meta is not None else None
    hashes = IdHashSet()
    terms = TermTally(space)
    n_post = 0
    try:
        writer = _impact_writer(out, ram_buffer_mb)
        docs = _ImpactDocs(writer)
    except Exception as e:
        raise _java_error("cannot open a Lucene index writer", e) from None
    try:
        def records():
            for part in parts:
                yield from iter_jsonl_vectors(part, integer=True)

        it = progress(records(), desc="indexing (lucene)", unit="doc", disable=not show_progress or None)
        for docid, vec, where in it:
            terms.add(vec, where)
            hashes.add(docid)
            n_post += docs.add(docid, vec)
        writer.commit()
    except UsageError:
        writer.rollback()
        raise
    except Exception as e:
        if type(e).__name__ == "JavaException":
            writer.rollback()
            raise _java_error("Lucene indexing failed", e) from None
        raise
    writer.close()
    return {"documents": len(hashes), "postings": n_post, "hashes": hashes.to_array()}


def _assign(parts: list[Path], n: int) -> list[list[str]]:
    """Deal part files to ``n`` writers, largest first to the least loaded (balanced bytes)."""
    loads = [[0, i, []] for i in range(n)]
    for p in sorted(parts, key=lambda p: -p.stat().st_size):
        w = min(loads, key=lambda x: (x[0], x[1]))
        w[0] += p.stat().st_size
        w[2].append(str(p))
    return [sorted(w[2]) for w in loads if w[2]]


def _worker_main() -> None:
    """Entry of a spawned writer process (``python -c``): job as JSON on stdin, statistics as JSON on
    stdout, id hashes next to its index; a bad input is one ``error:`` line on stderr, exit 2.

    A plain subprocess, not multiprocessing: spawn re-imports the caller's main module, which fails
    (or reruns the caller's code) in a script without an ``if __name__ == "__main__"`` guard."""
    import json

    import numpy as np

    job = json.loads(sys.stdin.read())
    try:
        r = _index_parts(job["parts"], job["out"], job["space"], job["ram_buffer_mb"], job["heap"], False)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    np.save(job["out"] + ".hashes.npy", r.pop("hashes"))
    print(json.dumps(r))


def _spawn_writer(parts: list[str], out: Path, space_meta, ram_buffer_mb: float, heap: str):
    import json
    import subprocess

    p = subprocess.Popen([sys.executable, "-c", "from pyserini_splare.index.lucene import _worker_main; _worker_main()"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdin.write(json.dumps({"parts": parts, "out": str(out), "space": space_meta,
                              "ram_buffer_mb": ram_buffer_mb, "heap": heap}))
    p.stdin.close()
    return p


def _collect_writer(p, out: Path) -> dict:
    import json

    import numpy as np

    stdout, stderr = p.stdout.read(), p.stderr.read()
    p.wait()
    if p.returncode != 0:
        lines = [ln for ln in stderr.splitlines() if ln.startswith("error: ")]
        if lines:
            raise UsageError(lines[-1][len("error: "):])
        tail = " | ".join(stderr.strip().splitlines()[-3:])
        raise UsageError(f"a Lucene writer process failed (exit {p.returncode}): {tail}")
    r = json.loads(stdout.strip().splitlines()[-1])
    r["hashes"] = np.load(str(out) + ".hashes.npy")
    return r


def _build_termfreq(coll, tmp: Path, threads: int, optimize: bool, validate: bool, ram_buffer_mb: float,
                    worker_heap: str) -> dict:
    from ..formats.idhash import IdHashSet

    space_meta = coll.space.to_meta() if validate and not coll.foreign else None
    groups = _assign(list(coll.parts), max(1, threads))
    if threads > len(groups):
        print(f"note: {coll} has {len(coll.parts)} part file(s); each writer takes whole part files, so "
              f"{len(groups)} of the {threads} threads will work (write smaller parts to index faster)", file=sys.stderr)
    if len(groups) == 1:
        res = [_index_parts(groups[0], str(tmp), space_meta, ram_buffer_mb, None, True)]
        shards = []
    else:
        # Not named "_...": Lucene reads names starting with "_" in an index folder as segment names.
        (tmp / "writers").mkdir()
        shards = [tmp / "writers" / f"w{i}" for i in range(len(groups))]
        procs = []
        try:
            procs = [_spawn_writer(g, d, space_meta, ram_buffer_mb, worker_heap) for g, d in zip(groups[1:], shards[1:])]
            res = [_index_parts(groups[0], str(shards[0]), space_meta, ram_buffer_mb, None, True)]
            res += [_collect_writer(p, d) for p, d in zip(procs, shards[1:])]
        finally:  # on an error or Ctrl-C, no writer outlives the build
            for p in procs:
                if p.poll() is None:
                    p.terminate()
                    p.wait()
    hashes = IdHashSet()
    for r in res:
        hashes.extend_hashes(r["hashes"])
    coll.check_duplicates(hashes)
    try:
        if shards or optimize:
            w = _impact_writer(tmp, ram_buffer_mb) if shards else None
            if shards:
                # varargs as separate arguments: pyjnius matches no Directory[] given as a list
                w.addIndexes(*[_fs_directory(d) for d in shards])
            else:
                from .._java import jclass

                cfg = jclass("org.apache.lucene.index.IndexWriterConfig")()
                cfg.setSimilarity(jclass("io.anserini.search.similarity.ImpactSimilarity")())
                cfg.setOpenMode(jclass("org.apache.lucene.index.IndexWriterConfig$OpenMode").APPEND)
                w = jclass("org.apache.lucene.index.IndexWriter")(_fs_directory(tmp), cfg)
            if optimize:
                w.forceMerge(1)
            w.commit()
            w.close()
    except Exception as e:
        if type(e).__name__ == "JavaException":
            raise _java_error("merging the writers' segments failed", e) from None
        raise
    import shutil

    if shards:
        shutil.rmtree(tmp / "writers")
    return {"documents": sum(r["documents"] for r in res), "postings": sum(r["postings"] for r in res),
            "writers": len(groups)}


def _build_anserini(coll, tmp: Path, threads: int, optimize: bool, validate: bool) -> dict:
    n_docs = n_post = None
    if validate:
        n_docs, n_post, _ = coll.validate(check_terms=not coll.foreign)
    if threads > len(coll.parts):
        # Anserini gives each input file to one thread: more threads than files sit idle.
        print(f"note: {coll} has {len(coll.parts)} part file(s); Anserini indexes one file per thread, so at most "
              f"{len(coll.parts)} of the {threads} threads will work (write smaller parts to index faster)",
              file=sys.stderr)
    # Anserini's JsonVectorCollection reads every *.json(l) in its input folder, meta.json
    # included: give it a folder holding only links to the part files.
    src = tmp / "_input"
    src.mkdir()
    for i, p in enumerate(coll.parts):
        os.symlink(Path(p).resolve(), src / f"{i:05d}-{Path(p).name}")
    try:
        _index_collection([
            "-collection", "JsonVectorCollection", "-input", str(src), "-index", str(tmp),
            "-generator", "DefaultLuceneDocumentGenerator", "-threads", str(threads),
            "-impact", "-pretokenized", *(["-optimize"] if optimize else []),
        ])
    finally:
        for p in src.iterdir():
            p.unlink()
        src.rmdir()
    return {"documents": n_docs, "postings": n_post}


def build(inputs, index, *, threads: int = 1, overwrite: bool = False, method: str | None = None,
          optimize: bool | None = None, validate: bool | None = None, ram_buffer_mb: float | None = None,
          worker_heap: str | None = None, quant_scale: float | None = None, **_ignored) -> dict:
    """Build a Lucene impact index from one or more vectors directories (shards of one collection).

    ``method``: "termfreq" (default; cost independent of the quantization scale) or "anserini"
    (Anserini's IndexCollection, the reference). ``optimize``: merge into one segment. ``validate``
    (default true): check every term against the feature space while indexing (termfreq) or in a
    pass before (anserini); lines, ids, integer weights and duplicate ids are always checked.
    ``ram_buffer_mb``: each writer's indexing buffer (default 256). ``worker_heap``: JVM heap of each
    spawned writer process (default 2g; the in-process JVM keeps its own). ``quant_scale``: quantize
    a foreign folder's float weights (see :func:`pyserini_splare.formats.vectors_dir.open_collection`).
    """
    from ..formats.index_meta import write_index_meta
    from ..formats.vectors_dir import open_collection

    method = method or "termfreq"
    if method not in IMPACT_METHODS:
        raise UsageError(f"unknown Lucene impact build method {method!r} (choose from {', '.join(IMPACT_METHODS)})")
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if threads < 1:
        raise UsageError(f"threads must be >= 1, got {threads}")
    optimize = bool(optimize)
    validate = True if validate is None else bool(validate)
    ram = float(ram_buffer_mb or DEFAULT_RAM_BUFFER_MB)
    if not 1 <= ram <= 2047:  # Lucene's per-writer limit
        raise UsageError(f"ram_buffer_mb must be in [1, 2047], got {ram_buffer_mb}")
    coll = open_collection(inputs, kind="sparse", quant_scale=quant_scale)
    t0 = time.time()
    with atomic_dir(index, overwrite=overwrite) as tmp:
        if method == "termfreq":
            stats = _build_termfreq(coll, tmp, threads, optimize, validate, ram, worker_heap or DEFAULT_WORKER_HEAP)
        else:
            stats = _build_anserini(coll, tmp, threads, optimize, validate)
        write_docid_table(tmp)
        meta = write_index_meta(tmp, "lucene", vectors=coll.meta.to_json(), source=coll.source(),
                                build={"method": method, "threads": threads, "optimize": optimize,
                                       "seconds": round(time.time() - t0, 2), **stats})
    return meta


DOCID_TABLE = "docids.npy"


def write_docid_table(index_dir) -> int:
    """``docids.npy``: every document's id in Lucene docid order (``np.save`` of a fixed-width unicode
    array), so that a searcher maps Lucene's hit numbers to ids in Python for a whole result list at
    once, instead of reading each hit's stored document (see ``search/lucene.py``). Read back from the
    finished index (the writers' merges decide the order), one stored-field read per document."""
    import numpy as np

    from .._java import jclass

    reader = jclass("org.apache.lucene.index.DirectoryReader").open(_fs_directory(index_dir))
    try:
        fields = reader.storedFields()
        ids = [fields.document(i).get("id") for i in range(reader.maxDoc())]
    finally:
        reader.close()
    with open(Path(index_dir) / DOCID_TABLE, "wb") as f:
        np.save(f, np.array(ids, dtype=str), allow_pickle=False)
    return len(ids)


def build_impact_index(inputs, index, **options) -> dict:
    """The builder's former name (same arguments as :func:`build`)."""
    return build(inputs, index, **options)


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
        from ..formats.index_meta import write_index_meta

        reader = jclass("io.anserini.index.IndexReaderUtils").getReader(str(tmp))
        n_docs = int(reader.numDocs())
        reader.close()
        if n_docs == 0:
            raise UsageError(f"no documents indexed from {input} with collection class {collection}")
        meta = write_index_meta(tmp, "bm25", source=str(Path(input).resolve()), collection=collection,
                                language=language or "en",
                                build={"threads": threads, "seconds": round(time.time() - t0, 2), "documents": n_docs})
    return meta
