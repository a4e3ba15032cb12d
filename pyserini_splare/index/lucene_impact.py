"""Lucene impact indexes of vectors directories, built in-process through pyjnius (no server).

A term's integer weight becomes its frequency in field ``contents`` (Anserini's ``ImpactSimilarity`` and
field layout, so Pyserini's and Anserini's impact searchers read the index). ``method="termfreq"``
(default) feeds Lucene's ``IndexWriter`` through a ``DelimitedTermFrequencyTokenFilter``: one token per posting,
whatever the scale. ``method="anserini"`` runs Anserini's ``IndexCollection`` (cost linear in the scale),
kept as the reference the tests compare against. Fields and details: docs/indexing.md, docs/backends.md.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from .._errors import UsageError
from .._outputs import atomic_dir

# The term/frequency delimiter: a control character, which no term of a vectors directory can hold
# (formats.spaces.safe_term: printable, no whitespace), unlike "|" (a BERT vocabulary token).
TF_DELIMITER = "\x01"
DEFAULT_RAM_BUFFER_MB = 256
BLOCK_DOCS = 256  # documents per block handed to a Java indexing thread

# Lucene's whitespace tokenizer cuts longer tokens into pieces: Anserini's -pretokenized analyzer
# does so to a longer term, and so does the searchers' query parser. Longer terms are refused.
MAX_TERM_CHARS = 255

_FIELD_SIG = "(Ljava/lang/String;Ljava/lang/CharSequence;Lorg/apache/lucene/index/IndexableFieldType;)V"


def _impact_writer(path, ram_buffer_mb: float):
    """An ``IndexWriter`` creating an impact index at ``path`` with the term-frequency analyzer."""
    from .._java import fs_directory, jclass
    from ..formats.quant import MAX_IMPACT

    params = jclass("java.util.HashMap")()
    params.put("delimiter", TF_DELIMITER)
    tokenizer = jclass("java.util.HashMap")()
    # room for the delimiter and the frequency after the longest term (the default, 255, is the term's)
    tokenizer.put("maxTokenLen", str(MAX_TERM_CHARS + 1 + len(str(MAX_IMPACT))))
    analyzer = (jclass("org.apache.lucene.analysis.custom.CustomAnalyzer").builder()
                .withTokenizer("whitespace", tokenizer)
                .addTokenFilter("delimitedTermFrequency", params).build())
    cfg = jclass("org.apache.lucene.index.IndexWriterConfig")(analyzer)
    cfg.setSimilarity(jclass("io.anserini.search.similarity.ImpactSimilarity")())
    cfg.setOpenMode(jclass("org.apache.lucene.index.IndexWriterConfig$OpenMode").CREATE)
    cfg.setRAMBufferSizeMB(float(ram_buffer_mb))
    # A flushed segment written as a compound file is written twice (its files, then the bundle).
    cfg.setUseCompoundFile(False)
    return jclass("org.apache.lucene.index.IndexWriter")(fs_directory(path), cfg)


class _Feeder:
    """Indexes documents in Java threads while Python reads and validates the next lines.

    Lucene's inversion is most of the build's CPU, so ``threads`` Java threads of one ``ExecutorService`` call
    ``IndexWriter.addDocuments`` on blocks of reusable ``Document`` objects (docs/backends.md). The ``Runnable`` is
    ``MethodHandleProxies.asInterfaceInstance`` over ``addDocuments`` bound to the writer and block: a hidden
    class pyjnius cannot name, so one composed handle ``(MethodHandle) -> Future`` makes and submits it. A block
    slot is refilled only after its ``Future`` is done (a ``Field`` is reusable once ``addDocument`` returns).
    """

    def __init__(self, writer, threads: int, block: int):
        from .._java import as_interface, jclass, method_handles

        MH, MT, c, lookup = method_handles()
        self._List = jclass("java.util.ArrayList")
        Runnable = c("java.lang.Runnable")
        self.pool = jclass("java.util.concurrent.Executors").newFixedThreadPool(threads)
        # (Iterable) -> long: this writer's addDocuments
        self._add = lookup.findVirtual(c("org.apache.lucene.index.IndexWriter"), "addDocuments",
                                       MT.methodType(jclass("java.lang.Long").TYPE, c("java.lang.Iterable"))).bindTo(writer)
        as_runnable = as_interface(MH, MT, c, lookup, "java.lang.Runnable")
        submit = lookup.findVirtual(c("java.util.concurrent.ExecutorService"), "submit",
                                    MT.methodType(c("java.util.concurrent.Future"), Runnable)).bindTo(self.pool)
        self._submit = MH.filterArguments(submit, 0, as_runnable)  # (MethodHandle) -> Future
        ft = jclass("org.apache.lucene.document.FieldType")()
        ft.setTokenized(True)
        ft.setStored(False)
        ft.setIndexOptions(jclass("org.apache.lucene.index.IndexOptions").DOCS_AND_FREQS)
        ft.freeze()
        self._cls = (jclass("org.apache.lucene.document.Document"), jclass("org.apache.lucene.document.StringField"),
                     jclass("org.apache.lucene.document.Field$Store").YES,
                     jclass("org.apache.lucene.document.BinaryDocValuesField"), jclass("org.apache.lucene.util.BytesRef"),
                     jclass("org.apache.lucene.document.Field"), ft)
        self.block = block
        self.slots = [self._slot() for _ in range(threads + 1)]
        self._next = 0
        self._filled = 0  # documents in the slot being filled
        self._cur = self.slots[0]

    def _slot(self) -> dict:
        Document, StringField, YES, BDV, BytesRef, Field, ft = self._cls
        docs, fields = self._List(), []
        for _ in range(self.block):
            # Field(String, CharSequence, type): pyjnius cannot choose among Field's 3-argument constructors.
            f = (StringField("id", "", YES), BDV("id", BytesRef(b"")), Field("contents", "", ft, signature=_FIELD_SIG))
            d = Document()
            for x in f:
                d.add(x)
            docs.add(d)
            fields.append(f)
        args = self._List()
        args.add(self._add.bindTo(docs))
        return {"docs": docs, "fields": fields, "args": args, "future": None}

    def add(self, docid: str, text: str) -> None:
        slot = self._cur
        f_id, f_dv, f_contents = slot["fields"][self._filled]
        f_id.setStringValue(docid)
        f_dv.setBytesValue(docid.encode("utf-8"))
        f_contents.setStringValue(text)
        self._filled += 1
        if self._filled == self.block:
            self._send(slot["args"])

    def _send(self, args) -> None:
        slot = self._cur
        slot["future"] = self._submit.invokeWithArguments(args, signature="(Ljava/util/List;)Ljava/lang/Object;")
        self._filled = 0
        self._next = (self._next + 1) % len(self.slots)
        self._cur = self.slots[self._next]
        if self._cur["future"] is not None:  # the slot's previous block: indexed before it is refilled
            f, self._cur["future"] = self._cur["future"], None
            f.get()

    def finish(self) -> None:
        """Index the partial last block and wait for every block (a Java error surfaces here)."""
        if self._filled:
            args = self._List()
            args.add(self._add.bindTo(self._cur["docs"].subList(0, self._filled)))
            self._send(args)
        for s in self.slots:
            if s["future"] is not None:
                f, s["future"] = s["future"], None
                f.get()

    def close(self) -> None:
        """Stop the threads; after an error, wait for the blocks in flight (their errors are moot)."""
        for s in self.slots:
            if s["future"] is not None:
                try:
                    s["future"].get()
                except Exception:
                    pass
                s["future"] = None
        self.pool.shutdown()


_READ_BYTES = 1 << 20  # lines read (and checked by parse_block) ~1 MB at a time
_VECTOR_KEY = b'"vector": {'
# A writer's vector '"L12": 143, "L907": 88' without its quotes and spaces, ':' the delimiter and ',' a
# space: 'L12<SOH>143 L907<SOH>88', in one C pass (bytes.translate deletes, then maps).
_TO_TEXT = bytes.maketrans(b",:", b" " + TF_DELIMITER.encode())


def _lucene_texts(coll, validate: bool):
    """``(docid, analyzer text, postings)`` for every document of ``coll``, each line validated.

    A chunk of lines exactly as ``encode`` writes them is checked by
    :meth:`~pyserini_splare.formats.jsonvector.LineFormatter.parse_block` and turned into the analyzer's text
    (``L12<SOH>143 L907<SOH>88``) by one ``bytes.translate``; any other chunk goes line by line through orjson,
    ``check_vector`` and the space.
    """
    from ..formats.jsonl import parse_json_line, read_id
    from ..formats.jsonvector import LineFormatter, check_vector
    from ..formats.spaces import PrefixedSpace
    from ..formats.vectors_reader import TermTally

    sep = TF_DELIMITER

    def text(vec: dict, where: str) -> tuple[str, int]:
        if max(map(len, vec)) > MAX_TERM_CHARS // 2:  # UTF-16 units, as Java counts them: at most 2 per character
            for t in vec:
                if len(t.encode("utf-16-le")) // 2 > MAX_TERM_CHARS:
                    raise UsageError(f"{where}: term {t[:20]!r}... is longer than {MAX_TERM_CHARS} characters "
                                     "(Lucene's whitespace tokenizer and the searchers' query parser cut it)")
        t = " ".join([f"{t}{sep}{w}" for t, w in vec.items() if w])  # weight 0: no posting (Anserini: 0 repeats)
        return t, t.count(sep)

    fmt = LineFormatter(coll.space) if not coll.foreign and isinstance(coll.space, PrefixedSpace) \
        and len(coll.space.term(coll.space.size - 1)) <= MAX_TERM_CHARS else None
    if fmt is None:
        terms = TermTally(coll.space if validate and not coll.foreign else None)
        for docid, vec, where in coll.iter_records():
            terms.add(vec, where)
            yield docid, *text(vec, where)
        return
    terms = TermTally(coll.space if validate else None)
    for part, n, lines in coll.line_blocks(_READ_BYTES):
        block = fmt.parse_block(lines)
        if block is not None:
            docids, _, _, bounds = block
            for raw, docid, k in zip(lines, docids, (bounds[1:] - bounds[:-1]).tolist()):
                # parse_block accepted it: contents "" and an id without whitespace, so the first
                # '"vector": {' is the vector's, and '}}\n' ends the line.
                body = raw[raw.find(_VECTOR_KEY) + len(_VECTOR_KEY):-3]
                yield docid, body.translate(_TO_TEXT, b'" ').decode("ascii"), k
            continue
        for i, raw in enumerate(lines, n + 1):  # the reference path, whose errors name file:line
            if raw.isspace() or not raw:
                continue
            where = f"{part}:{i}"
            obj = parse_json_line(raw, where)
            docid = read_id(obj, where)
            if "vector" not in obj:
                raise UsageError(f"{where}: missing 'vector'")
            vec = check_vector(obj["vector"], where, integer=True)
            terms.add(vec, where)
            yield docid, *text(vec, where)


def _build_termfreq(coll, tmp: Path, threads: int, optimize: bool, validate: bool, ram_buffer_mb: float | None,
                    block: int = BLOCK_DOCS) -> dict:
    """One ``IndexWriter``, ``threads`` Java indexing threads fed by this (Python) thread."""
    from .._console import progress
    from .._java import is_java_error, java_error, jclass
    from ..formats.idhash import IdHashSet

    if ram_buffer_mb is None:
        # Each thread fills its own in-memory segment from the shared buffer: 256 MB each, as when every
        # writer was a process of its own, within half the heap (the rest holds the blocks and merges).
        heap_mb = int(jclass("java.lang.Runtime").getRuntime().maxMemory()) // 2**20
        ram_buffer_mb = float(max(16, min(DEFAULT_RAM_BUFFER_MB * threads, heap_mb // 2, 2047)))

    hashes = IdHashSet()
    n_docs = n_post = 0
    try:
        writer = _impact_writer(tmp, ram_buffer_mb)
        feeder = _Feeder(writer, threads, block)
    except Exception as e:
        raise java_error("cannot open a Lucene index writer", e) from None
    ok = False
    try:
        it = progress(_lucene_texts(coll, validate), desc="indexing (lucene)", unit="doc")
        for docid, text, k in it:
            hashes.add(docid)
            feeder.add(docid, text)
            n_post += k
            n_docs += 1
        feeder.finish()
        coll.check_duplicates(hashes)
        if optimize:
            writer.forceMerge(1)
        writer.commit()
        ok = True
    except Exception as e:
        if is_java_error(e):
            raise java_error("Lucene indexing failed", e) from None
        raise
    finally:
        feeder.close()
        if ok:
            writer.close()
        else:
            writer.rollback()
    return {"documents": n_docs, "postings": n_post, "ram_buffer_mb": ram_buffer_mb}


def _build_anserini(coll, tmp: Path, threads: int, optimize: bool, validate: bool) -> dict:
    n_docs = n_post = None
    if validate:
        n_docs, n_post, _ = coll.validate()
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
    from .._java import run_anserini_tool

    try:
        run_anserini_tool("io.anserini.index.IndexCollection", [
            "-collection", "JsonVectorCollection", "-input", str(src), "-index", str(tmp),
            "-generator", "DefaultLuceneDocumentGenerator", "-threads", str(threads),
            "-impact", "-pretokenized", *(["-optimize"] if optimize else []),
        ])
    finally:
        for p in src.iterdir():
            p.unlink()
        src.rmdir()
    return {"documents": n_docs, "postings": n_post}


def build(inputs, index, *, threads: int = 1, overwrite: bool = False, **options) -> dict:
    """Build a Lucene impact index from one or more vectors directories (shards of one collection).

    ``options``: the lucene backend's build options, declared with their defaults, limits and help in
    :class:`pyserini_splare.backends.LuceneImpactBuild`. ``threads``: Java indexing threads (termfreq; one
    process) or Anserini's threads, which take one part file each.
    """
    from ..backends import get_backend
    from ..formats.docids import write_docids
    from ..formats.index_meta import write_index_meta
    from ..formats.vectors_reader import open_collection

    o = get_backend("lucene").check_build_options(options)
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if threads < 1:
        raise UsageError(f"threads must be >= 1, got {threads}")
    coll = open_collection(inputs, kind="sparse", quant_scale=o["quant_scale"])
    t0 = time.time()
    with atomic_dir(index, overwrite=overwrite) as tmp:
        if o["method"] == "termfreq":
            stats = _build_termfreq(coll, tmp, threads, o["optimize"], o["validate"], o["ram_buffer_mb"])
        else:
            stats = _build_anserini(coll, tmp, threads, o["optimize"], o["validate"])
        write_docids(tmp, lucene_ids(tmp))
        meta = write_index_meta(tmp, "lucene", vectors=coll.meta.to_json(), source=coll.source(),
                                build={"method": o["method"], "threads": threads, "optimize": o["optimize"],
                                       "seconds": round(time.time() - t0, 2), **stats})
    return meta


def lucene_ids(index_dir) -> list[str]:
    """Every document's stored id in Lucene docid order (the docid table, :mod:`pyserini_splare.formats.docids`,
    so that a searcher maps Lucene's hit numbers to ids for a whole result list at once instead of reading
    each hit's stored document; see ``search/lucene.py``). Read back from the finished index (the writers'
    threads and merges decide the order)."""
    from .._java import fs_directory, jclass

    reader = jclass("org.apache.lucene.index.DirectoryReader").open(fs_directory(index_dir))
    try:
        return _all_ids(reader)
    finally:
        reader.close()


def _all_ids(reader) -> list[str]:
    """The stored ``id`` of every document, in docid order, as one string from Java: the handle
    ``(IntStream, i -> storedFields.document(i).get("id")) -> String.join("\\n", ...)`` (ids hold no
    whitespace). One JNI call instead of two per document (0.5 vs 0.2 CPU-s at 20,000)."""
    from .._java import as_interface, jclass, method_handles

    n = int(reader.maxDoc())
    if n == 0:
        return []
    MH, MT, c, lookup = method_handles()
    String, List, IntFunction = c("java.lang.String"), c("java.util.List"), c("java.util.function.IntFunction")
    Stream = c("java.util.stream.Stream")
    doc = lookup.findVirtual(c("org.apache.lucene.index.StoredFields"), "document",
                             MT.methodType(c("org.apache.lucene.document.Document"), jclass("java.lang.Integer").TYPE))
    get = MH.insertArguments(lookup.findVirtual(c("org.apache.lucene.document.Document"), "get",
                                                MT.methodType(String, String)), 1, "id")
    id_of = MH.filterReturnValue(doc.bindTo(reader.storedFields()), get)  # (int) -> String
    as_fn = as_interface(MH, MT, c, lookup, "java.util.function.IntFunction")
    mapped = MH.filterArguments(lookup.findVirtual(c("java.util.stream.IntStream"), "mapToObj",
                                                   MT.methodType(Stream, IntFunction)), 1, as_fn)
    join = MH.insertArguments(lookup.findStatic(String, "join", MT.methodType(String, c("java.lang.CharSequence"),
                                                                             c("java.lang.Iterable"))), 0, "\n")
    joined = MH.filterReturnValue(lookup.findVirtual(Stream, "toList", MT.methodType(List)),
                                  join.asType(MT.methodType(String, List)))
    args = jclass("java.util.ArrayList")()
    args.add(jclass("java.util.stream.IntStream").range(0, n))
    args.add(id_of)
    text = MH.filterReturnValue(mapped, joined).invokeWithArguments(args, signature="(Ljava/util/List;)Ljava/lang/Object;")
    ids = text.split("\n")
    if len(ids) != n:
        raise UsageError(f"the index holds {n} documents but {len(ids)} ids were read back (an id with a line break?)")
    return ids
