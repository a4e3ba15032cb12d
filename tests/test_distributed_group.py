"""A 3-shard Lucene group searched as one equals the single index built from the same vectors (top-100
docids and scores, ties by docid, 50 queries); BM25 and mismatched shards are refused with the reason."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from pyserini_splare._errors import UsageError
from pyserini_splare.formats.index_group import make_group
from pyserini_splare.index.lucene_group import build_lucene_group
from pyserini_splare.search.group import LuceneGroupSearcher, merge_topk
from pyserini_splare.vectors import PrefixedSpace, SparseVector, VectorsWriter

pytestmark = pytest.mark.jvm  # a module fixture builds Lucene shards

N_DOCS, N_FEATURES, SCALE, N_SHARDS = 1500, 3000, 100, 3


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """The same random documents written once whole and once dealt into 3 shard directories; every
    10th document duplicates the previous one (so equal scores fall in different shards)."""
    rng = np.random.default_rng(3)
    root = tmp_path_factory.mktemp("group")
    space = PrefixedSpace("L", N_FEATURES)
    stack = contextlib.ExitStack()
    writers = [stack.enter_context(VectorsWriter(root / f"s{i}", space, SCALE, part_size=300)) for i in range(N_SHARDS)]
    whole = stack.enter_context(VectorsWriter(root / "all", space, SCALE, part_size=500))
    prev = None
    for i in range(N_DOCS):
        if i % 10 == 9:
            ids, wts = prev
        else:
            n = int(rng.integers(1, 300))
            ids = rng.choice(N_FEATURES, size=n, replace=False)
            wts = rng.gamma(2.0, 0.6, size=n).astype(np.float32)
        prev = (ids, wts)
        vec = SparseVector(ids, wts)
        whole.write(f"doc{i:05d}", vec)
        writers[i % N_SHARDS].write(f"doc{i:05d}", vec)
    stack.close()
    queries = {}
    for j in range(50):
        n = int(rng.integers(3, 60))
        ids = rng.choice(N_FEATURES, size=n, replace=False)
        queries[f"q{j}"] = {f"L{i}": float(x) for i, x in zip(ids, rng.uniform(0.05, 2.0, size=n))}
    build_lucene_group([root / f"s{i}" for i in range(N_SHARDS)], root / "group", threads=2)
    from pyserini_splare.index.lucene_impact import build

    build([str(root / "all")], str(root / "single"), threads=2)
    return root, queries


def test_group_top100_equals_single_index(shards):
    from pyserini_splare.search.lucene import ImpactSearcher

    root, queries = shards
    with ImpactSearcher(root / "single") as one, LuceneGroupSearcher(root / "group") as group:
        assert group.num_docs == one.num_docs == N_DOCS and len(group.shards) == N_SHARDS
        a = one.batch_search(queries, k=100, threads=2)
        b = group.batch_search(queries, k=100, threads=2)
    ties = 0
    for q in queries:
        assert len(a[q]) == 100 and b[q] == a[q], q
        ties += sum(x[1] == y[1] for x, y in zip(a[q], a[q][1:]))
    assert ties > 0  # the duplicates made tied scores: their order (docid asc) was checked too


def test_group_from_index_list_and_made_group(shards, tmp_path):
    root, queries = shards
    dirs = [root / "group" / f"shard-{i:05d}" for i in range(N_SHARDS)]
    some = dict(list(queries.items())[:5])
    with LuceneGroupSearcher(root / "group") as g:
        ref = g.batch_search(some, k=20)
    with LuceneGroupSearcher.from_indexes(dirs) as g:
        assert g.batch_search(some, k=20) == ref
    make_group(dirs, tmp_path / "g2")
    with LuceneGroupSearcher(tmp_path / "g2") as g:
        assert g.batch_search(some, k=20) == ref


def test_merge_topk_against_sorting_everything():
    rng = np.random.default_rng(0)
    lists = [[(f"d{rng.integers(1000):04d}", float(rng.integers(5))) for _ in range(40)] for _ in range(3)]
    lists = [sorted(set(l), key=lambda h: (-h[1], h[0])) for l in lists]
    everything = sorted({h for l in lists for h in l}, key=lambda h: (-h[1], h[0]))
    assert merge_topk(lists, 25) == everything[:25]


def test_bm25_and_mismatched_shards_are_refused(tmp_path, shards):
    from pyserini_splare.formats.index_meta import write_index_meta

    root, _ = shards
    bm = tmp_path / "bm25"
    bm.mkdir()
    write_index_meta(bm, "bm25", source="x")
    with pytest.raises(UsageError, match="idf"):
        LuceneGroupSearcher.from_indexes([root / "single", bm])
    with pytest.raises(UsageError, match="idf"):
        make_group([root / "single", bm], tmp_path / "g")
    assert not (tmp_path / "g").exists()
    other = tmp_path / "other"
    other.mkdir()
    import json

    meta = json.loads((root / "single" / "pyserini_splare_index.json").read_text())
    meta["vectors"]["quant_scale"] = 50
    (other / "pyserini_splare_index.json").write_text(json.dumps(meta))
    with pytest.raises(UsageError, match="quant_scale"):
        LuceneGroupSearcher.from_indexes([root / "single", other])


def test_index_and_search_clis_on_a_group(shards, tmp_path):
    import json

    from pyserini_splare.index.__main__ import main as index_main
    from pyserini_splare.search.__main__ import main as search_main

    root, queries = shards
    qfile = tmp_path / "q.jsonl"
    qfile.write_text("".join(json.dumps({"id": q, "vector": v}) + "\n" for q, v in list(queries.items())[:10]))
    assert index_main(["--backend", "lucene-group", "--input", *[str(root / f"s{i}") for i in range(N_SHARDS)],
                       "--index", str(tmp_path / "g"), "--threads", "2"]) == 0
    runs = {}
    shard_dirs = [str(tmp_path / "g" / f"shard-{i:05d}") for i in range(N_SHARDS)]
    for name, index in (("group", [tmp_path / "g"]), ("single", [root / "single"]), ("list", shard_dirs)):
        runs[name] = tmp_path / f"{name}.txt"
        assert search_main(["--index", *map(str, index), "--query-vectors", str(qfile), "--output", str(runs[name]),
                            "--hits", "100", "--run-tag", "t"]) == 0
    assert runs["group"].read_text() == runs["single"].read_text() == runs["list"].read_text()


def test_search_cli_refuses_a_bm25_group(tmp_path, capsys):
    from pyserini_splare.formats.index_meta import write_index_meta
    from pyserini_splare.search.__main__ import main as search_main

    for n in ("a", "b"):
        (tmp_path / n).mkdir()
        write_index_meta(tmp_path / n, "bm25", source="x")
    assert search_main(["--index", str(tmp_path / "a"), str(tmp_path / "b"), "--topics", "cacm",
                        "--output", str(tmp_path / "run.txt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "idf" in err and err.count("\n") == 1 and not (tmp_path / "run.txt").exists()
