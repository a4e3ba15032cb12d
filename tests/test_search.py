"""The backend registry, the flags generated from it, and explicit quantization of query vectors.

References are computed here: scores by a numpy dot product of ``round(w * scale)`` integers
(the quantization of the vectors format, written out in the test), options by the dataclasses'
own field lists.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from pyserini_splare.index.__main__ import main as index_main
from pyserini_splare.backends import BACKENDS, option_flag
from pyserini_splare.search.__main__ import main as search_main
from pyserini_splare.vectors import PrefixedSpace, SparseVector, VectorsWriter

SCALE = 100.0
N_DOCS, N_FEATURES = 60, 40


@pytest.fixture(scope="module")
def exact_index(tmp_path_factory):
    """An exact index of random documents, and their quantized weights as a dense matrix."""
    root = tmp_path_factory.mktemp("search")
    rng = np.random.default_rng(7)
    dense = np.zeros((N_DOCS, N_FEATURES), dtype=np.int64)
    with VectorsWriter(root / "vectors", PrefixedSpace("L", N_FEATURES), SCALE) as w:
        for i in range(N_DOCS):
            ids = np.sort(rng.choice(N_FEATURES, 6, replace=False))
            wts = rng.integers(1, 300, 6) / 100.0
            w.write(f"d{i:03d}", SparseVector(ids, wts))
            dense[i, ids] = np.rint(wts * SCALE).astype(np.int64)
    assert index_main(["--backend", "exact", "--input", str(root / "vectors"), "--index", str(root / "exact")]) == 0
    return root, dense


def _run(path):
    return [line.split()[:5] for line in open(path)]


def _write_queries(path, vectors: dict) -> str:
    # json.dumps keeps Python's number types: 1 stays 1, 1.0 stays 1.0
    path.write_text("".join(json.dumps({"id": q, "vector": v}) + "\n" for q, v in vectors.items()))
    return str(path)


def _expected(dense, query_int: dict[str, int], k: int):
    qv = np.zeros(N_FEATURES, dtype=np.int64)
    for t, w in query_int.items():
        qv[int(t[1:])] = w
    scores = dense @ qv
    order = sorted((i for i in range(N_DOCS) if scores[i] > 0), key=lambda i: (-scores[i], f"d{i:03d}"))[:k]
    return [(f"d{i:03d}", float(scores[i])) for i in order]


def test_integer_and_real_json_weights_are_the_same_query(exact_index, tmp_path):
    """Issue 9 item 4: {"L1": 1} and {"L1": 1.0} are model outputs alike, quantized x100 alike."""
    root, dense = exact_index
    as_int = _write_queries(tmp_path / "int.jsonl", {"a": {"L1": 1, "L7": 2}, "b": {"L3": 1}})
    as_real = _write_queries(tmp_path / "real.jsonl", {"a": {"L1": 1.0, "L7": 2.0}, "b": {"L3": 1.0}})
    runs = []
    for name, q in (("int", as_int), ("real", as_real)):
        out = tmp_path / f"{name}.txt"
        assert search_main(["--index", str(root / "exact"), "--query-vectors", q, "--output", str(out),
                            "--hits", "10"]) == 0
        runs.append(_run(out))
    assert runs[0] == runs[1]
    got = [(d, float(s)) for q, _, d, _, s in runs[0] if q == "a"]
    assert got == _expected(dense, {"L1": 100, "L7": 200}, 10)


def test_quantized_query_vectors_are_used_as_they_are(exact_index, tmp_path, capsys):
    root, dense = exact_index
    real = _write_queries(tmp_path / "real.jsonl", {"a": {"L1": 0.37, "L5": 1.5}})
    quant = _write_queries(tmp_path / "q.jsonl", {"a": {"L1": 37, "L5": 150}})
    out_real, out_q = tmp_path / "real.txt", tmp_path / "q.txt"
    assert search_main(["--index", str(root / "exact"), "--query-vectors", real, "--output", str(out_real)]) == 0
    assert search_main(["--index", str(root / "exact"), "--query-vectors", quant, "--query-vectors-quantized",
                        "--output", str(out_q)]) == 0
    assert _run(out_real) == _run(out_q)
    assert [(d, float(s)) for _, _, d, _, s in _run(out_q)] == _expected(dense, {"L1": 37, "L5": 150}, 1000)
    # a declared-quantized file with a fractional weight is refused, and no run is written
    bad = _write_queries(tmp_path / "bad.jsonl", {"a": {"L1": 0.5}})
    capsys.readouterr()
    out_bad = tmp_path / "bad.txt"
    assert search_main(["--index", str(root / "exact"), "--query-vectors", bad, "--query-vectors-quantized",
                        "--output", str(out_bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "not an integer" in err
    assert not out_bad.exists()


def test_python_api_quantizes_plain_mappings_and_trusts_quantized_queries(exact_index):
    from pyserini_splare.search import QuantizedQuery, open_searcher

    root, dense = exact_index
    with open_searcher(root / "exact") as s:
        assert s.search({"L2": 1}, k=5) == s.search({"L2": 1.0}, k=5) == _expected(dense, {"L2": 100}, 5)
        assert s.search(QuantizedQuery({"L2": 100}), k=5) == _expected(dense, {"L2": 100}, 5)


def test_every_backend_has_one_builder_and_one_searcher():
    """The registry declares; the index stage's BUILDERS and the search stage's SEARCHERS implement every
    backend, and nothing else."""
    from pyserini_splare._lazy import load_callable
    from pyserini_splare.index.backends import BUILDERS
    from pyserini_splare.search.registry import SEARCHERS

    assert set(BUILDERS) == set(SEARCHERS) == set(BACKENDS)
    for b in BACKENDS.values():
        assert callable(load_callable(BUILDERS[b.name])), b.name
        assert load_callable(SEARCHERS[b.name]).backend == b.name
        assert b.query_kind in ("sparse", "dense", "text")


def test_options_are_checked_against_their_declared_limits():
    """Every option once: its default filled in, a value out of its limits one line naming them."""
    from pyserini_splare._errors import UsageError
    from pyserini_splare.backends import get_backend
    from pyserini_splare.index.seismic import DEFAULT_BUILD

    seismic = get_backend("seismic")
    assert seismic.check_search_options({}) == {"query_cut": 20, "heap_factor": 0.9, "n_knn": 0,
                                                "sorted_summaries": True}
    assert seismic.check_search_options({"heap_factor": 1}) ["heap_factor"] == 1.0
    assert DEFAULT_BUILD == {k: v for k, v in seismic.defaults("build").items() if k != "quant_scale"}
    for kind, opts, message in (
            ("search", {"heap_factor": 0}, "seismic option heap_factor must be in (0, 1], got 0"),
            ("search", {"query_cut": True}, "seismic option query_cut must be an integer >= 1, got True"),
            ("build", {"n_postings": "many"}, 'seismic option n_postings must be an integer >= 1 or "auto"'),
            ("build", {"max_fraction": float("nan")}, "seismic option max_fraction must be >= 1")):
        with pytest.raises(UsageError) as e:
            seismic.check_options(kind, opts)
        assert str(e.value).startswith(message) and "\n" not in str(e.value)
    assert seismic.check_build_options({"n_postings": "auto"})["n_postings"] == "auto"
    with pytest.raises(UsageError, match="lucene option method must be one of termfreq, anserini"):
        get_backend("lucene").check_build_options({"method": "fast"})
    with pytest.raises(UsageError, match=r"lucene option ram_buffer_mb must be in \[1, 2047\]"):
        get_backend("lucene").check_build_options({"ram_buffer_mb": 4096})


def test_docs_options_table_is_the_registry():
    """docs/backends.md's options table is generated from the registry (regenerate it with
    ``python -c "from pyserini_splare.backends import options_markdown; print(options_markdown())"``)."""
    from pathlib import Path

    from pyserini_splare.backends import options_markdown

    text = (Path(__file__).resolve().parents[1] / "docs" / "backends.md").read_text(encoding="utf-8")
    begin, end = "<!-- options-table: begin -->\n", "<!-- options-table: end -->"
    assert begin in text and end in text
    assert text.split(begin, 1)[1].split(end, 1)[0] == options_markdown()


def test_help_lists_every_backend_option():
    import io
    from contextlib import redirect_stdout

    from pyserini_splare.index.__main__ import build_parser as index_parser
    from pyserini_splare.search.__main__ import build_parser as search_parser

    for parser, kind in ((index_parser(), "build"), (search_parser(), "search")):
        buf = io.StringIO()
        with redirect_stdout(buf), pytest.raises(SystemExit):
            parser.parse_args(["--help"])
        text = buf.getvalue()
        for b in BACKENDS.values():
            cls = b.build_options if kind == "build" else b.search_options
            for f in dataclasses.fields(cls):
                if option_flag(f):
                    assert option_flag(f) in text, (kind, b.name, f.name)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_unknown_build_option_is_a_one_line_error(backend, tmp_path, capsys):
    out = tmp_path / "idx"
    assert index_main(["--backend", backend, "--input", str(tmp_path), "--index", str(out),
                       "--options", '{"no_such_option": 1}']) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: unknown {backend} option(s) no_such_option") and "\n" not in err
    assert not out.exists()


def test_another_backends_flag_is_refused(exact_index, tmp_path, capsys):
    root, _ = exact_index
    assert index_main(["--backend", "exact", "--input", str(root / "vectors"), "--index", str(tmp_path / "i"),
                       "--n-postings", "10"]) == 2
    assert "--n-postings applies to seismic indexes, not exact" in capsys.readouterr().err
    q = _write_queries(tmp_path / "q.jsonl", {"a": {"L1": 1.0}})
    assert search_main(["--index", str(root / "exact"), "--query-vectors", q, "--output", str(tmp_path / "r"),
                        "--query-cut", "5"]) == 2
    assert "--query-cut applies to seismic indexes, not exact" in capsys.readouterr().err
    assert search_main(["--index", str(root / "exact"), "--query-vectors", q, "--output", str(tmp_path / "r"),
                        "--searcher-options", '{"query_cut": 5}']) == 2
    assert "unknown exact option(s) query_cut" in capsys.readouterr().err
    # the exact backend's own option reaches its searcher
    assert search_main(["--index", str(root / "exact"), "--query-vectors", q, "--output", str(tmp_path / "r"),
                        "--searcher-options", '{"batch_size": 1}']) == 0


def test_index_cli_takes_shards_as_one_collection(tmp_path):
    """`index --input S0 S1` over two shard directories gives the unsharded index's run (docids and scores)."""
    rng = np.random.default_rng(11)
    space = PrefixedSpace("L", N_FEATURES)
    with VectorsWriter(tmp_path / "all", space, SCALE) as whole, VectorsWriter(tmp_path / "s0", space, SCALE) as s0, \
            VectorsWriter(tmp_path / "s1", space, SCALE) as s1:
        for i in range(N_DOCS):
            vec = SparseVector(np.sort(rng.choice(N_FEATURES, 5, replace=False)), rng.integers(1, 300, 5) / 100.0)
            whole.write(f"d{i:03d}", vec)
            (s0 if i % 2 else s1).write(f"d{i:03d}", vec)
    assert index_main(["--backend", "exact", "--input", str(tmp_path / "all"), "--index", str(tmp_path / "one")]) == 0
    assert index_main(["--backend", "exact", "--input", str(tmp_path / "s0"), str(tmp_path / "s1"),
                       "--index", str(tmp_path / "two")]) == 0
    q = _write_queries(tmp_path / "q.jsonl", {f"q{j}": {f"L{j}": 1.0, f"L{j + 3}": 0.5} for j in range(10)})
    for name in ("one", "two"):
        assert search_main(["--index", str(tmp_path / name), "--query-vectors", q, "--output",
                            str(tmp_path / f"{name}.txt"), "--run-tag", "t"]) == 0
    assert (tmp_path / "one.txt").read_text() == (tmp_path / "two.txt").read_text()


def test_index_cli_prints_the_size_advice_after_a_build(exact_index, tmp_path, capsys, monkeypatch):
    """The CLI prints index.advice's notes (one `note:` line each on stderr) and nothing when there are none."""
    from pyserini_splare.index import advice as advice_mod

    root, _ = exact_index
    capsys.readouterr()
    assert index_main(["--backend", "exact", "--input", str(root / "vectors"), "--index", str(tmp_path / "a")]) == 0
    assert "note:" not in capsys.readouterr().err  # 60 documents: exact is what recommend() gives
    seen = []
    monkeypatch.setattr(advice_mod, "advice", lambda meta: seen.append(meta) or ["first", "second"])
    assert index_main(["--backend", "exact", "--input", str(root / "vectors"), "--index", str(tmp_path / "b")]) == 0
    err = capsys.readouterr().err
    assert [ln for ln in err.splitlines() if ln.startswith("note:")] == ["note: first", "note: second"]
    assert seen and seen[0]["backend"] == "exact"


def test_docid_tables_one_writer_one_reader(tmp_path):
    """formats/docids.py: what is written is read back; a missing, damaged or wrong-length table is one line."""
    from pyserini_splare._errors import UsageError
    from pyserini_splare.formats.docids import DOCIDS_FILE, read_docids, write_docids

    ids = ["d1", "CACM-0115", "é-3", "x" * 40]
    assert write_docids(tmp_path, ids) == 4
    table = read_docids(tmp_path, 4)
    assert table.tolist() == ids
    # mapped, not copied: its pages are the file's (shared by serve's worker processes), and read-only
    assert isinstance(table, np.memmap) and not table.flags.writeable
    assert table[np.array([3, 0])].tolist() == [ids[3], ids[0]]
    with pytest.raises(UsageError, match="4 ids for an index of 5 documents"):
        read_docids(tmp_path, 5)
    assert read_docids(tmp_path / "none", required=False) is None
    with pytest.raises(UsageError, match="missing docid table"):
        read_docids(tmp_path / "none")
    (tmp_path / DOCIDS_FILE).write_bytes((tmp_path / DOCIDS_FILE).read_bytes()[:40])
    with pytest.raises(UsageError, match="unreadable docid table") as e:
        read_docids(tmp_path)
    assert "\n" not in str(e.value)


def test_docid_tables_have_one_writer_and_one_reader_in_formats():
    """Every index that numbers its documents keeps its ids in docids.npy: formats/docids.py defines one
    writer and one reader, and no other module of the package writes or reads a docid table itself."""
    import ast
    from pathlib import Path

    import pyserini_splare
    from pyserini_splare.formats import docids

    tree = ast.parse(Path(docids.__file__).read_text())
    assert sorted(f.name for f in tree.body if isinstance(f, ast.FunctionDef)) == ["read_docids", "write_docids"]
    root = Path(pyserini_splare.__file__).parent
    # the old faiss table's name appears only where such a folder is refused (formats/faiss_index.py)
    holders = sorted(str(p.relative_to(root)) for p in root.rglob("*.py") if "docids.txt" in p.read_text())
    assert holders == ["formats/faiss_index.py"]
