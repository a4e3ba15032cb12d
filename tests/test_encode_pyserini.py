"""Query encoding for search, Pyserini's own LuceneImpactSearcher with our query encoder, and SPLADE-tiny on CACM.

These tests start the JVM (once per process, ~15-20 s) and use real SPLADE-tiny weights.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from pyserini_splare._errors import UsageError
from pyserini_splare.index.backends import get_backend
from pyserini_splare.search.queries import encode_topics
from pyserini_splare.encode.__main__ import main as encode_main
from pyserini_splare.vectors import PrefixedSpace, iter_vectors
from test_encode_splade import _corpus

pytestmark = pytest.mark.jvm

TOPICS = {"q1": "sparse neural retrieval", "q2": "document vector weight", "q3": "query term index"}


@pytest.fixture(scope="module")
def tiny(splade_tiny_path):
    return splade_tiny_path


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory, tiny):
    from pyserini_splare.index.__main__ import main as index_main

    d = tmp_path_factory.mktemp("impact")
    corpus = _corpus(d / "c.jsonl", 25)
    assert encode_main(["--corpus", str(corpus), "--encoder", f"splade:{tiny}", "--output", str(d / "vec"),
                        "--batch-size", "8"]) == 0
    assert index_main(["--backend", "lucene", "--input", str(d / "vec"), "--index", str(d / "idx")]) == 0
    return d


def _index_meta(d):
    from pyserini_splare.index import read_index_meta

    return read_index_meta(d / "idx")


def _brute_force(vec_dir, query: dict[str, int]) -> list[tuple[str, int]]:
    scores = [(docid, sum(w * query.get(t, 0) for t, w in v.items())) for docid, v in iter_vectors(vec_dir)]
    return sorted(((d, s) for d, s in scores if s > 0), key=lambda x: (-x[1], x[0]))


def test_encode_topics_sparse_and_space_check(tiny, tiny_index):
    from pyserini_splare.encode.splade import load_splade

    meta = _index_meta(tiny_index)
    spec = f"splade:{tiny}"
    got = encode_topics(spec, TOPICS, get_backend(meta["backend"]), meta, batch_size=2)
    enc = load_splade(str(tiny))
    for qid, text in TOPICS.items():
        v = enc.encode([text], "query")[0]
        ref = dict(zip(enc.space.terms(v.ids), v.weights.tolist()))
        assert got[qid].keys() == ref.keys()
        np.testing.assert_allclose([got[qid][t] for t in ref], list(ref.values()), atol=1e-5)  # batched vs alone
    # A SPLARE-style index (SAE latents L0..L131071): a SPLADE query encoder is refused in one line.
    splare_meta = json.loads(json.dumps(meta))
    splare_meta["vectors"]["feature_space"] = PrefixedSpace("L", 131072, name="sae").to_meta()
    with pytest.raises(UsageError, match="does not match the index's feature space") as e:
        encode_topics(spec, TOPICS, get_backend(meta["backend"]), splare_meta)
    assert "\n" not in str(e.value)
    with pytest.raises(UsageError, match="unknown encoder kind 'nope'"):
        encode_topics("nope:x", TOPICS, get_backend(meta["backend"]), meta)


def test_search_cli_with_encoder_equals_brute_force(tiny, tiny_index, tmp_path):
    from pyserini_splare.search.__main__ import main as search_main
    from pyserini_splare.encode.pyserini_compat import PyseriniQueryEncoder

    topics = tmp_path / "topics.tsv"
    topics.write_text("".join(f"{q}\t{t}\n" for q, t in TOPICS.items()))
    run = tmp_path / "run.txt"
    assert search_main(["--index", str(tiny_index / "idx"), "--topics", str(topics), "--encoder", f"splade:{tiny}",
                        "--output", str(run), "--hits", "100"]) == 0
    lines = [x.split() for x in run.read_text().splitlines()]
    qenc = PyseriniQueryEncoder(f"splade:{tiny}", index_dir=str(tiny_index / "idx"))
    # The same batch as the CLI's (one batch of all topics), so the float weights are bit-identical.
    for qid, q in zip(TOPICS, qenc.encode_batch(list(TOPICS.values()))):
        got = [(d, float(s)) for q_, _, d, _, s, _ in lines if q_ == qid]
        ref = _brute_force(tiny_index / "vec", q)
        assert got == [(d, float(s)) for d, s in ref]


def test_pyserini_lucene_impact_searcher_accepts_our_query_encoder(tiny, tiny_index):
    from pyserini_splare._java import start_jvm
    from pyserini_splare.encode.pyserini_compat import PyseriniQueryEncoder

    start_jvm()  # before importing pyserini: see pyserini_splare/_java.py
    from pyserini.search.lucene import LuceneImpactSearcher

    qenc = PyseriniQueryEncoder(f"splade:{tiny}", index_dir=str(tiny_index / "idx"))
    assert qenc.quant_scale == 100
    searcher = LuceneImpactSearcher(str(tiny_index / "idx"), query_encoder=qenc, min_idf=-1)
    for text in TOPICS.values():
        q = qenc.encode(text)
        assert q and all(isinstance(w, int) and w > 0 for w in q.values())
        hits = searcher.search(text, k=100)
        got = sorted(((h.docid, round(h.score)) for h in hits), key=lambda x: (-x[1], x[0]))
        assert got == _brute_force(tiny_index / "vec", q)


def test_pyserini_document_encoder_matches_the_cli(tiny, tiny_index):
    from pyserini_splare.corpus import read_jsonl
    from pyserini_splare.encode.pyserini_compat import PyseriniDocumentEncoder

    docs = [json.loads(x) for x in (tiny_index / "c.jsonl").read_text().splitlines()[:6]]
    denc = PyseriniDocumentEncoder(f"splade:{tiny}")
    got = denc.encode([d["text"] for d in docs], titles=[d["title"] for d in docs], max_length=512)
    written = dict(iter_vectors(tiny_index / "vec"))
    assert got == [written[d["id"]] for d in docs]
    assert [d.id for d in read_jsonl(tiny_index / "c.jsonl")][:6] == [d["id"] for d in docs]
    floats = PyseriniDocumentEncoder(f"splade:{tiny}", quant_scale=None, topk=3).encode(["the cat sat"])
    assert len(floats[0]) == 3 and all(isinstance(w, float) for w in floats[0].values())
