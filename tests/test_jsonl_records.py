"""Random access to JSONL records by id (formats.jsonl.JsonlRecords), as the server reads documents and
document vectors: every lookup equals the streaming reader's record for that id (the reference:
``dict(read_jsonl(...))`` and ``Collection.iter_records``), without the texts or vectors held in memory."""

from __future__ import annotations

import gzip
import json

from pyserini_splare.corpus import jsonl_texts, read_jsonl


def _write(path, rows, raw_lines=()):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
        for line in raw_lines:
            f.write(line + "\n")


def test_corpus_texts_on_demand_equal_the_streaming_reader(tmp_path):
    d = tmp_path / "corpus"
    (d / "sub").mkdir(parents=True)
    _write(d / "a.jsonl", [{"id": "d1", "contents": "first text"},
                           {"docid": "d2", "text": "second", "title": "A title"},
                           {"id": 7, "contents": "numeric id"},
                           {"id": "é-ü", "contents": "non-ASCII id and text ✓"}],
           raw_lines=["", "   ", '{"id": "q\\"uote", "contents": "escaped id"}',
                      '{ "contents": "id not first", "id": "d3" }'])
    _write(d / "sub" / "b.jsonl", [{"id": "d1", "contents": "a later duplicate replaces the first"},
                                   {"_id": "d4", "contents": "underscore id"}])
    texts = jsonl_texts(str(d))
    want = {doc.id: doc.text for doc in read_jsonl(d)}
    assert texts is not None and len(texts) == len(want) == 7
    assert set(texts) == set(want)
    assert {k: texts[k] for k in want} == want
    assert texts.get("nope") is None and "nope" not in texts
    one = jsonl_texts(str(d / "a.jsonl"))
    assert dict(one.items()) == {doc.id: doc.text for doc in read_jsonl(d / "a.jsonl")}


def test_gzipped_or_non_jsonl_corpora_have_no_random_access(tmp_path):
    with gzip.open(tmp_path / "c.jsonl.gz", "wt") as f:
        f.write(json.dumps({"id": "d1", "contents": "x"}) + "\n")
    assert jsonl_texts(str(tmp_path / "c.jsonl.gz")) is None
    (tmp_path / "c.tar.gz").write_bytes(b"")
    assert jsonl_texts(str(tmp_path / "c.tar.gz")) is None
    assert jsonl_texts(str(tmp_path / "missing.jsonl")) is None


def test_document_vectors_on_demand_equal_iter_records(tmp_path):
    from pyserini_splare.formats.vectors_reader import open_collection
    from pyserini_splare.testing import synth

    cfg = synth.SynthConfig(n_features=4096, doc_terms=30, query_terms=5, active_features=1024, seed=3)
    docs, queries = synth.generate(cfg, 300, 2)
    vdir, _ = synth.write_collection(docs, queries, cfg, tmp_path, 100.0)
    collection = open_collection([vdir], kind="sparse")
    want = {docid: vec for docid, vec, _ in collection.iter_records()}
    got = collection.records_on_disk()
    assert len(got) == len(want) == 300
    assert all(got[d] == v for d, v in want.items())
