"""The error contract of every CLI (docs/errors.md), one test per class of bad input.

Each case asserts the exit status, exactly one ``error:`` line on stderr and no traceback, and that
nothing new appeared at the output path (no file, no folder, no ``.partial``). CLIs are called
in-process (``main(argv)``, the function ``python -m`` runs) so the suite pays for one JVM and one
torch import.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pyserini_splare._errors import UsageError
from pyserini_splare._outputs import atomic_file, check_output_dir, check_output_file
from pyserini_splare.vectors import PrefixedSpace, SparseVector, VectorsWriter

REPO = Path(__file__).resolve().parents[1]


def cli(capsys, module: str, *args) -> tuple[int, str, str]:
    main = importlib.import_module(f"pyserini_splare.{module}.__main__").main
    try:
        rc = main([str(a) for a in args])
    except SystemExit as e:  # argparse's own usage errors
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_error(rc, err, code=2, match=None):
    lines = [ln for ln in err.splitlines() if ln.startswith("error:") or ": error:" in ln]
    assert rc == code, f"exit {rc}, stderr:\n{err}"
    assert len(lines) == 1, f"expected one error line, stderr:\n{err}"
    assert "Traceback" not in err, err
    if match:
        assert match in lines[0], lines[0]
    return lines[0]


def listing(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


# --------------------------------------------------------------------------------------------
# Fixtures: a small vectors directory, an exact index, query vectors, runs and qrels
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("contract")
    rng = np.random.default_rng(0)
    space = PrefixedSpace("L", 200)
    with VectorsWriter(root / "vec", space=space, quant_scale=100.0) as w:
        for i in range(40):
            ids = np.sort(rng.choice(200, 12, replace=False))
            w.write(f"d{i}", SparseVector(ids, rng.integers(1, 300, 12) / 100.0))
    (root / "q.jsonl").write_text("".join(json.dumps({"id": f"q{i}", "vector": {f"L{i}": 1.5, f"L{i + 1}": 0.5}}) + "\n"
                                          for i in range(5)))
    (root / "topics.tsv").write_text("".join(f"q{i}\tquery {i}\n" for i in range(5)))
    (root / "qrels.txt").write_text("".join(f"q{i} 0 d{i} 1\n" for i in range(5)))
    (root / "qrels.other.txt").write_text("".join(f"z{i} 0 d{i} 1\n" for i in range(5)))
    (root / "runA.txt").write_text("".join(f"q{i} Q0 d{j} {j + 1} {10 - j} a\n" for i in range(3) for j in range(3)))
    (root / "runB.txt").write_text("".join(f"x{i} Q0 d{j} {j + 1} {10 - j} b\n" for i in range(3) for j in range(3)))
    return root


@pytest.fixture(scope="module")
def exact_index(world):
    main = importlib.import_module("pyserini_splare.index.__main__").main
    assert main(["--backend", "exact", "--input", str(world / "vec"), "--index", str(world / "idx.exact")]) == 0
    return world / "idx.exact"


def _search_args(world, index, out):
    return ["--index", index, "--query-vectors", world / "q.jsonl", "--output", out, "--hits", "5"]


def _fusion_args(world, out):
    return ["--runs", world / "runA.txt", world / "runA.txt", "--output", out]


# --------------------------------------------------------------------------------------------
# Item 5: one output rule for every output file (search, fusion) and folder (encode, index)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cmd", ["search", pytest.param("fusion", marks=pytest.mark.slow)])  # ranx compiles: ~7 s
def test_existing_output_file_needs_overwrite(capsys, world, exact_index, tmp_path, cmd):
    out = tmp_path / "run.txt"
    out.write_text("precious\n")
    args = _search_args(world, exact_index, out) if cmd == "search" else _fusion_args(world, out)
    rc, _, err = cli(capsys, cmd, *args)
    assert_one_error(rc, err, match="--overwrite")
    assert out.read_text() == "precious\n" and listing(tmp_path) == {"run.txt"}
    rc, _, err = cli(capsys, cmd, *args, "--overwrite")
    assert rc == 0, err
    assert out.read_text() != "precious\n"


@pytest.mark.parametrize("cmd", ["search", "fusion"])
@pytest.mark.parametrize("case", ["folder", "missing parent", "parent is a file"])
def test_bad_output_file_path(capsys, world, exact_index, tmp_path, cmd, case):
    if case == "folder":
        out = tmp_path / "runs"
        out.mkdir()
    elif case == "missing parent":
        out = tmp_path / "nope" / "run.txt"
    else:
        (tmp_path / "f").write_text("x")
        out = tmp_path / "f" / "run.txt"
    before = listing(tmp_path)
    args = _search_args(world, exact_index, out) if cmd == "search" else _fusion_args(world, out)
    rc, _, err = cli(capsys, cmd, *args, "--overwrite")
    assert_one_error(rc, err)
    assert listing(tmp_path) == before
    if case == "folder":
        assert listing(out) == set()


@pytest.mark.parametrize("backend", ["exact", "seismic", "lucene"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_index_path_is_a_file(capsys, world, tmp_path, backend, overwrite):
    target = tmp_path / "idx"
    target.write_text("not an index\n")
    rc, _, err = cli(capsys, "index", "--backend", backend, "--input", world / "vec", "--index", target,
                     *(["--overwrite"] if overwrite else []))
    assert_one_error(rc, err)
    assert target.read_text() == "not an index\n" and listing(tmp_path) == {"idx"}  # no idx.partial


def test_encode_output_is_a_file(capsys, world, tmp_path):
    target = tmp_path / "vec.out"
    target.write_text("x")
    for extra in ([], ["--overwrite"]):
        rc, _, err = cli(capsys, "encode", "--prune-from", world / "vec", "--topk", "5", "--output", target, *extra)
        assert_one_error(rc, err)
        assert listing(tmp_path) == {"vec.out"}


def test_output_rule_helpers(tmp_path):
    """The helpers every CLI uses (the rule itself, independent of any one CLI)."""
    f = tmp_path / "a.txt"
    assert check_output_file(f) == f
    f.write_text("x")
    with pytest.raises(UsageError, match="already exists"):
        check_output_file(f)
    check_output_file(f, overwrite=True)
    with pytest.raises(UsageError, match="is a folder"):
        check_output_file(tmp_path, overwrite=True)
    with pytest.raises(UsageError, match="does not exist"):
        check_output_file(tmp_path / "no" / "a.txt")
    with pytest.raises(UsageError, match="not a folder"):
        check_output_dir(f, overwrite=True)
    with pytest.raises(UsageError, match="already exists"):
        check_output_dir(tmp_path / ".." / tmp_path.name)
    assert check_output_dir(tmp_path / "new") == tmp_path / "new"


# --------------------------------------------------------------------------------------------
# Item 8: atomic files get the umask's permissions, not mkstemp's 0600
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_atomic_file_respects_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        with atomic_file(tmp_path / "a.txt") as f:
            f.write("x")
        with open(tmp_path / "b.txt", "w") as f:  # reference: what a plain open gives
            f.write("x")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "a.txt").stat().st_mode)
    assert mode == 0o666 & ~umask == stat.S_IMODE((tmp_path / "b.txt").stat().st_mode)


def test_run_file_and_meta_readable_by_others(capsys, world, exact_index, tmp_path):
    old = os.umask(0o022)
    try:
        rc, _, err = cli(capsys, "search", *_search_args(world, exact_index, tmp_path / "run.txt"))
    finally:
        os.umask(old)
    assert rc == 0, err
    assert stat.S_IMODE((tmp_path / "run.txt").stat().st_mode) == 0o644
    metas = [p for p in exact_index.iterdir() if p.suffix == ".json"]
    assert metas and all(stat.S_IMODE(p.stat().st_mode) & 0o044 == 0o044 for p in metas)


# --------------------------------------------------------------------------------------------
# Item 2: options that do not apply are refused, not ignored
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flag, value", [("--topk", "-1"), ("--topk", "-40"), ("--hits", "0"), ("--hits", "-5"),
                                         ("--threads", "0"), ("--batch-size", "0")])
def test_search_negative_or_zero_counts(capsys, world, exact_index, tmp_path, flag, value):
    rc, _, err = cli(capsys, "search", *_search_args(world, exact_index, tmp_path / "run.txt"), flag, value)
    assert_one_error(rc, err, match=flag)
    assert listing(tmp_path) == set()


# --------------------------------------------------------------------------------------------
# Item 1: document weights beyond the one impact bound, on every backend's build
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["exact", "seismic", pytest.param("lucene", marks=pytest.mark.jvm)])
@pytest.mark.parametrize("w", ["1000000000000", "2000000000", "1e30", "-3", "NaN"])
def test_huge_document_weight_refused_by_every_backend(capsys, world, tmp_path, backend, w):
    import shutil

    vec = tmp_path / "vec"
    shutil.copytree(world / "vec", vec)
    part = next(p for p in vec.iterdir() if p.name.startswith("part-"))
    lines = part.read_text().splitlines(keepends=True)
    rec = json.loads(lines[3])
    term = next(iter(rec["vector"]))
    lines[3] = lines[3].replace(f'"{term}": {rec["vector"][term]},', f'"{term}": {w},', 1)
    assert lines[3] != json.dumps(rec) + "\n"
    part.write_text("".join(lines))
    rc, _, err = cli(capsys, "index", "--backend", backend, "--input", vec, "--index", tmp_path / "idx")
    line = assert_one_error(rc, err)
    assert part.name in line or "weight" in line, line  # says where or what
    assert listing(tmp_path) == {"vec"}


# --------------------------------------------------------------------------------------------
# Item 6: huge query weights, missing encoder paths
# --------------------------------------------------------------------------------------------

HUGE = [1e30, 1e12, 2e9, "Infinity", "NaN", -1.0]


def _huge_queries(path: Path, w) -> Path:
    val = w if isinstance(w, str) else json.dumps(w)
    path.write_text(f'{{"id": "q0", "vector": {{"L1": {val}, "L2": 1.0}}}}\n')
    return path


@pytest.mark.parametrize("w", HUGE)
def test_huge_query_weight_exact(capsys, world, exact_index, tmp_path, w):
    q = _huge_queries(tmp_path / "q.jsonl", w)
    rc, _, err = cli(capsys, "search", "--index", exact_index, "--query-vectors", q, "--output", tmp_path / "r.txt")
    assert_one_error(rc, err)
    assert listing(tmp_path) == {"q.jsonl"}


@pytest.fixture(scope="module")
def seismic_index(world):
    main = importlib.import_module("pyserini_splare.index.__main__").main
    assert main(["--backend", "seismic", "--input", str(world / "vec"), "--index", str(world / "idx.seismic")]) == 0
    return world / "idx.seismic"


@pytest.mark.parametrize("w", HUGE)
def test_huge_query_weight_seismic(capsys, seismic_index, tmp_path, w):
    q = _huge_queries(tmp_path / "q.jsonl", w)
    rc, _, err = cli(capsys, "search", "--index", seismic_index, "--query-vectors", q, "--output", tmp_path / "r.txt")
    assert_one_error(rc, err)
    assert listing(tmp_path) == {"q.jsonl"}


@pytest.mark.parametrize("spec", ["splade:{p}", "splare:{p}", "milco:{p}", "splade-llm:{p}", "qwen3-embed:{p}"])
def test_encoder_path_that_does_not_exist(capsys, world, exact_index, tmp_path, spec):
    missing = tmp_path / "no-such-model"
    spec = spec.format(p=missing)
    rc, _, err = cli(capsys, "encode", "--corpus", REPO / "pyserini_splare" / "demo" / "data" / "corpus.jsonl",
                     "--encoder", spec, "--output", tmp_path / "vec")
    line = assert_one_error(rc, err)
    # the path and that it is missing -- not a model hub's "Repo id must be in the form ..."
    assert str(missing) in line and "does not exist" in line, line
    rc, _, err = cli(capsys, "search", "--index", exact_index, "--topics", world / "topics.tsv", "--encoder", spec,
                     "--output", tmp_path / "run.txt")
    line = assert_one_error(rc, err)
    assert str(missing) in line and "does not exist" in line, line
    assert listing(tmp_path) == set()


# --------------------------------------------------------------------------------------------
# Item 4: eval and fusion on inputs that share no query
# --------------------------------------------------------------------------------------------


def test_eval_run_and_qrels_share_no_query(capsys, world):
    rc, out, err = cli(capsys, "eval", "--qrels", world / "qrels.other.txt", "--run", world / "runA.txt")
    assert_one_error(rc, err, match="no query")
    assert out == ""


def test_eval_partial_overlap_warns(capsys, world):
    rc, out, err = cli(capsys, "eval", "--qrels", world / "qrels.txt", "--run", world / "runA.txt",
                       "--metrics", "AP")
    assert rc == 0, err
    warnings = [ln for ln in err.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "2 of 5" in warnings[0], err  # q3, q4 are judged and absent from the run
    # trec_eval -c: AP over the 5 judged queries, q3 and q4 count as 0 (independent reference: the
    # formula; q0's run ranks d0 first (AP 1), q1's ranks d1 second (AP 1/2), q2's d2 third (AP 1/3))
    assert out.strip() == f"AP\tall\t{(1 + 1 / 2 + 1 / 3) / 5:.4f}"


def test_fusion_intersection_of_disjoint_runs(capsys, world, tmp_path):
    out = tmp_path / "fused.txt"
    rc, _, err = cli(capsys, "fusion", "--runs", world / "runA.txt", world / "runB.txt", "--queries", "intersection",
                     "--output", out)
    assert_one_error(rc, err, match="no quer")
    assert listing(tmp_path) == set()


# --------------------------------------------------------------------------------------------
# Item 6: a read-only output folder (encode, index, search, fusion)
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def read_only(folder: Path):
    """A folder nobody may write in. Root writes through permission bits, so as root the folder is made
    immutable (``chattr +i``, which refuses even root) instead of ``chmod 555``."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("running as root on a filesystem without chattr +i: cannot make a read-only folder")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


@pytest.mark.parametrize("cmd", ["encode", "index", "search", "fusion"])
def test_read_only_output_folder(capsys, world, exact_index, tmp_path, cmd):
    ro = tmp_path / "readonly"
    ro.mkdir()
    args = {
        "encode": ["--prune-from", world / "vec", "--topk", "5", "--output", ro / "vec"],
        "index": ["--backend", "exact", "--input", world / "vec", "--index", ro / "idx"],
        "search": _search_args(world, exact_index, ro / "run.txt"),
        "fusion": _fusion_args(world, ro / "fused.txt"),
    }[cmd]
    with read_only(ro):
        rc, _, err = cli(capsys, cmd, *args)
    line = assert_one_error(rc, err)
    assert "permission denied" in line.lower() or "not permitted" in line.lower(), line
    assert listing(ro) == set()


# --------------------------------------------------------------------------------------------
# Lucene (one JVM for the module, in-process): huge query weights, --encoder on BM25, a 1 MB query
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lucene_indexes(world):
    main = importlib.import_module("pyserini_splare.index.__main__").main
    assert main(["--backend", "lucene", "--input", str(world / "vec"), "--index", str(world / "idx.lucene")]) == 0
    coll = world / "coll"
    coll.mkdir()
    (coll / "docs.jsonl").write_text("".join(json.dumps({"id": f"d{i}", "contents": f"text number {i} about words"})
                                             + "\n" for i in range(20)))
    assert main(["--backend", "bm25", "--input", str(coll), "--index", str(world / "idx.bm25")]) == 0
    return world / "idx.lucene", world / "idx.bm25"


@pytest.mark.jvm
@pytest.mark.parametrize("w", HUGE)
def test_huge_query_weight_lucene(capsys, lucene_indexes, tmp_path, w):
    q = _huge_queries(tmp_path / "q.jsonl", w)
    rc, _, err = cli(capsys, "search", "--index", lucene_indexes[0], "--query-vectors", q, "--output",
                     tmp_path / "r.txt")
    assert_one_error(rc, err)
    assert listing(tmp_path) == {"q.jsonl"}


@pytest.mark.jvm
@pytest.mark.parametrize("flag", ["--encoder", "--query-vectors"])
def test_bm25_index_refuses_vector_queries(capsys, world, lucene_indexes, tmp_path, flag):
    """Searching BM25 while the user believes it is SPLADE is the silent wrong result this refuses."""
    value = f"splade:{tmp_path}" if flag == "--encoder" else world / "q.jsonl"
    rc, _, err = cli(capsys, "search", "--index", lucene_indexes[1], "--topics", world / "topics.tsv", flag, value,
                     "--output", tmp_path / "run.txt")
    assert_one_error(rc, err, match=flag)
    assert listing(tmp_path) == set()


@pytest.mark.jvm
def test_bm25_query_of_a_megabyte(capsys, world, lucene_indexes, tmp_path):
    """111,111 distinct words in one query: a run, or one line naming the query (Lucene's clause limit)."""
    rng = np.random.default_rng(1)
    words = {"".join(chr(97 + c) for c in rng.integers(0, 26, 8)) for _ in range(120_000)}
    topics = tmp_path / "big.tsv"
    topics.write_text("qbig\t" + " ".join(sorted(words)[:111_111]) + "\nq1\ttext number\n")
    out = tmp_path / "run.txt"
    rc, _, err = cli(capsys, "search", "--index", lucene_indexes[1], "--topics", topics, "--output", out)
    assert "Traceback" not in err
    if rc == 0:
        assert out.is_file()
    else:
        line = assert_one_error(rc, err)
        assert "qbig" in line, line  # which query, not "queryCount = 2 is not equal to completedTaskCount = 1"
        assert listing(tmp_path) == {"big.tsv"}


@pytest.mark.jvm
def test_verbose_shows_what_quiet_hides(world, lucene_indexes, tmp_path):
    """Item 10: the JVM's warnings and Lucene's log are hidden by default and shown with --verbose (one
    subprocess each: the JVM's logging is set when it starts, once per process)."""
    def search(*extra):
        env = {k: v for k, v in os.environ.items() if k != "PYSERINI_SPLARE_VERBOSE"}
        return subprocess.run([sys.executable, "-m", "pyserini_splare.search", "--index", str(lucene_indexes[1]),
                               "--topics", str(world / "topics.tsv"), "--output", str(tmp_path / f"r{len(extra)}.txt"),
                               *extra], capture_output=True, text=True, env=env, timeout=600)

    noisy = ("WARNING:", "MMapDirectory", "sun.misc.Unsafe")
    quiet, loud = search(), search("--verbose")
    assert quiet.returncode == loud.returncode == 0, quiet.stderr + loud.stderr
    assert not any(n in quiet.stderr for n in noisy), quiet.stderr
    assert any(n in loud.stderr for n in noisy), loud.stderr


# --------------------------------------------------------------------------------------------
# Shards of a Lucene group: the same shard twice, overlapping shards, shards that do not match
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shard_copies(world):
    """``vec`` again under another name (a copy: the same document ids) and through a link, and ``vec``
    quantized at another scale."""
    import shutil

    shutil.copytree(world / "vec", world / "vec.copy")
    os.symlink(world / "vec", world / "vec.link")
    space = PrefixedSpace("L", 200)
    with VectorsWriter(world / "vec.scale50", space=space, quant_scale=50.0) as w:
        w.write("z0", SparseVector(np.array([1, 2]), np.array([1.0, 2.0])))
    return world


@pytest.mark.parametrize("second", ["vec", "vec.link", "vec/../vec"])
def test_lucene_group_refuses_the_same_shard_twice(capsys, shard_copies, tmp_path, second):
    w = shard_copies
    rc, _, err = cli(capsys, "index", "--backend", "lucene-group", "--input", w / "vec", w / second,
                     "--index", tmp_path / "g")
    assert_one_error(rc, err, match="given twice")
    assert listing(tmp_path) == set()


def test_lucene_group_refuses_overlapping_shards(capsys, shard_copies, tmp_path):
    w = shard_copies
    rc, _, err = cli(capsys, "index", "--backend", "lucene-group", "--input", w / "vec", w / "vec.copy",
                     "--index", tmp_path / "g", "--threads", "2")
    line = assert_one_error(rc, err, match="the shards overlap")
    assert str(w / "vec") in line and str(w / "vec.copy") in line
    assert listing(tmp_path) == set()


def test_lucene_group_mismatch_names_the_input_folders(capsys, shard_copies, tmp_path):
    w = shard_copies
    rc, _, err = cli(capsys, "index", "--backend", "lucene-group", "--input", w / "vec", w / "vec.scale50",
                     "--index", tmp_path / "g")
    line = assert_one_error(rc, err, match="quantization scale")
    assert str(w / "vec.scale50") in line and "shard-0000" not in line
    assert listing(tmp_path) == set()


@pytest.mark.jvm
def test_search_refuses_the_same_index_twice_or_overlapping(capsys, world, lucene_indexes, tmp_path):
    import shutil

    index, _ = lucene_indexes
    out = tmp_path / "run.txt"
    rc, _, err = cli(capsys, "search", "--index", index, index, "--query-vectors", world / "q.jsonl", "--output", out)
    assert_one_error(rc, err, match="given twice")
    copy = tmp_path / "copy"
    shutil.copytree(index, copy)
    rc, _, err = cli(capsys, "search", "--index", index, copy, "--query-vectors", world / "q.jsonl", "--output", out)
    assert_one_error(rc, err, match="the shards overlap")
    assert listing(tmp_path) == {"copy"}
