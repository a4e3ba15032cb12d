"""ONNX export (``python -m pyserini_splare.export``) and the ``onnx:OUT`` encoder, against torch.

* real SPLADE-tiny: the same top terms and weights to 1e-4 as the torch encoder, on CACM topics and abstracts;
  ``search --encoder onnx:OUT`` on CACM (exact index of the torch encoder's vectors) gives the same top-10 as
  ``--encoder splade:...`` on at least 95% of the topics, in a process that never imports torch;
* BGE-M3's pooling (max per token id) on the tiny random checkpoint of test_models_bge_m3;
* OpenSearch's inference-free models: documents against the torch encoder and sentence-transformers'
  ``SparseEncoder`` (relu and doc-v3's log1p_relu), queries by the copied idf.json exactly, without the graphs;
* MILCO (pivot + LexEcho, and without echo) against its formulas written out (test_models_milco);
* document parity after quantization on real SPLADE-tiny: ONNX disagrees with torch no more than torch
  disagrees with itself at another batch size, and always by one quantum;
* the tokenizer run without transformers gives transformers' ids;
* bad input: an ONNX file whose inputs/outputs are not the exporter's, an unreadable file, an unexportable kind.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from pyserini_splare._errors import UsageError
from pyserini_splare.encode import load_encoder

from test_models_bge_m3 import tiny_bge_m3  # noqa: E402,F401  (fixture; tests/ is on sys.path)
from test_models_llm import tiny_llm  # noqa: E402,F401  (fixture)
from test_models_milco import TEXTS as MILCO_TEXTS  # noqa: E402
from test_models_milco import _reference as milco_reference  # noqa: E402
from test_models_milco import tiny_milco, without_echo  # noqa: E402,F401  (fixture)
from test_models_opensearch import _check_equal, _st_model, tiny_opensearch  # noqa: E402,F401  (fixture)

# ONNX exports take seconds each (torch.onnx + onnxruntime sessions): the whole module is slow.
pytestmark = pytest.mark.slow


def _quiet(_msg):
    pass


@pytest.fixture(scope="session")
def onnx_tiny(splade_tiny_path, tmp_path_factory):
    from pyserini_splare.export.onnx_export import export_onnx

    out = tmp_path_factory.mktemp("onnx") / "splade-tiny"
    cfg = export_onnx(f"splade:{splade_tiny_path}", out, log=_quiet)
    assert cfg["check_max_abs_diff"] < 1e-4
    return out


@pytest.fixture(scope="session")
def cacm_texts(shared_data):
    from pyserini_splare.corpus import read_html_tarball
    from pyserini_splare.topics import get_topics

    docs = [d.text for d in itertools.islice(read_html_tarball(shared_data / "cacm" / "cacm.tar.gz"), 200)]
    return list(get_topics("cacm").values()), docs


def _as_dict(v):
    return dict(zip(v.ids.tolist(), v.weights.tolist()))


def test_parity_with_torch_on_splade_tiny(splade_tiny_path, onnx_tiny, cacm_texts):
    torch_enc = load_encoder(f"splade:{splade_tiny_path}")
    onnx_enc = load_encoder(f"onnx:{onnx_tiny}")
    assert onnx_enc.space == torch_enc.space  # an index built by either is searched by either
    topics, docs = cacm_texts
    worst = 0.0
    for kind, texts in (("query", topics), ("doc", docs)):
        for a, b in zip(torch_enc.encode(texts, kind), onnx_enc.encode(texts, kind)):
            da, db = _as_dict(a), _as_dict(b)
            top_a = sorted(da, key=lambda k: -da[k])[:10]
            top_b = sorted(db, key=lambda k: -db[k])[:10]
            assert set(top_a) == set(top_b)
            worst = max(worst, max(abs(da.get(k, 0.0) - db.get(k, 0.0)) for k in set(da) | set(db)))
    assert worst < 1e-4, worst


def test_tokenizer_without_transformers_equals_transformers(splade_tiny_path, tiny_bge_m3):
    from transformers import AutoTokenizer

    from pyserini_splare.encode.fast_tokenizer import FastTokenizer

    texts = ["Sparse retrieval, learned!", "поиск документов 中文", "", "word " * 300]
    for path in (splade_tiny_path, tiny_bge_m3):
        hf, ours = AutoTokenizer.from_pretrained(str(path)), FastTokenizer(path)
        for add in (True, False):
            want = hf(texts, truncation=True, max_length=64, add_special_tokens=add, return_special_tokens_mask=True)
            got = ours.encode(texts, 64, add_special_tokens=add)
            assert [g[0].tolist() for g in got] == want["input_ids"]
            assert [g[1].tolist() for g in got] == want["special_tokens_mask"]


def test_bge_m3_export_equals_torch(tiny_bge_m3, tmp_path):
    from pyserini_splare.export.onnx_export import export_onnx

    cfg = export_onnx(f"bge-m3:{tiny_bge_m3}", tmp_path / "x", log=_quiet)
    assert cfg["pooling"]["method"] == "max_per_token_id"
    texts = ["sparse retrieval", "поиск документов поиск", "中文 检索 检索 检索", "x"]
    a, b = load_encoder(f"bge-m3:{tiny_bge_m3}"), load_encoder(f"onnx:{tmp_path / 'x'}")
    for va, vb in zip(a.encode(texts), b.encode(texts)):
        assert va.ids.tolist() == vb.ids.tolist()
        np.testing.assert_allclose(va.weights, vb.weights, rtol=1e-4, atol=1e-5)


# ---- search on CACM -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def cacm_exact_index(shared_data, splade_tiny_path, tmp_path_factory):
    """CACM encoded by the torch SPLADE-tiny, in an exact index (brute-force dot products: no JVM)."""
    from pyserini_splare.encode.__main__ import main as encode
    from pyserini_splare.index.__main__ import main as index

    root = tmp_path_factory.mktemp("cacm-onnx")
    assert encode(["--corpus", str(shared_data / "cacm" / "cacm.tar.gz"), "--encoder", f"splade:{splade_tiny_path}",
                   "--output", str(root / "vec"), "--batch-size", "32"]) == 0
    assert index(["--backend", "exact", "--input", str(root / "vec"), "--index", str(root / "idx")]) == 0
    return root / "idx"


def _top10(run_file) -> dict[str, list[str]]:
    out: dict[str, list[tuple[int, str]]] = {}
    for line in open(run_file, encoding="utf-8"):
        qid, _, doc, rank, *_ = line.split()
        out.setdefault(qid, []).append((int(rank), doc))
    return {q: [d for _, d in sorted(v)[:10]] for q, v in out.items()}


def _search_in_child(index, encoder, output, topics="cacm", extra=("--hits", "10"), report=("torch",)) -> str:
    """``search`` in a fresh interpreter; prints ``RC <rc> LOADED [<modules of report in sys.modules>]``."""
    args = ["--index", str(index), "--topics", str(topics), "--encoder", encoder, "--output", str(output), *extra]
    code = ("import sys\n"
            "from pyserini_splare.search.__main__ import main\n"
            f"rc = main({args!r})\n"
            f"print('RC', rc, 'LOADED', [m for m in {list(report)!r} if m in sys.modules])\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def test_search_cacm_onnx_equals_torch_top10(cacm_exact_index, onnx_tiny, splade_tiny_path, tmp_path):
    from pyserini_splare.search.__main__ import main as search

    assert search(["--index", str(cacm_exact_index), "--topics", "cacm", "--encoder", f"splade:{splade_tiny_path}",
                   "--output", str(tmp_path / "torch.txt"), "--hits", "10"]) == 0
    report = _search_in_child(cacm_exact_index, f"onnx:{onnx_tiny}", tmp_path / "onnx.txt")
    assert "RC 0 LOADED []" in report, report  # queries encoded without importing torch
    want, got = _top10(tmp_path / "torch.txt"), _top10(tmp_path / "onnx.txt")
    assert set(want) == set(got) and len(want) == 64
    same = sum(want[q] == got[q] for q in want) / len(want)
    assert same >= 0.95, same


def test_int8_export_changes_rankings_little(cacm_exact_index, onnx_tiny, splade_tiny_path, tmp_path):
    """int8 dynamic quantization: measured, not assumed equal (docs/benchmarks.md records the numbers)."""
    from pyserini_splare.export.onnx_export import _quantize
    from pyserini_splare.search.__main__ import main as search

    q8 = tmp_path / "int8"
    shutil.copytree(onnx_tiny, q8)
    for name in ("trunk.onnx", "head.onnx"):
        _quantize(str(q8 / name))
    cfg = json.loads((q8 / "onnx_encoder.json").read_text())
    (q8 / "onnx_encoder.json").write_text(json.dumps({**cfg, "quantize": "int8"}))
    assert (q8 / "trunk.onnx").stat().st_size < 0.5 * (onnx_tiny / "trunk.onnx").stat().st_size
    for name, enc in (("torch", f"splade:{splade_tiny_path}"), ("int8", f"onnx:{q8}")):
        assert search(["--index", str(cacm_exact_index), "--topics", "cacm", "--encoder", enc,
                       "--output", str(tmp_path / f"{name}.txt"), "--hits", "10"]) == 0
    want, got = _top10(tmp_path / "torch.txt"), _top10(tmp_path / "int8.txt")
    overlap = np.mean([len(set(want[q]) & set(got[q])) / 10 for q in want])
    assert overlap >= 0.8, overlap  # int8 moves some documents, it does not scramble the ranking


# ---- bad input ------------------------------------------------------------------------------------


def test_bad_onnx_files_are_one_error(onnx_tiny, tmp_path, capsys):
    from pyserini_splare.encode.__main__ import main as encode

    swapped = tmp_path / "swapped"
    shutil.copytree(onnx_tiny, swapped)
    shutil.copy(onnx_tiny / "trunk.onnx", swapped / "head.onnx")
    with pytest.raises(UsageError, match="inputs/outputs are not what the exporter writes"):
        load_encoder(f"onnx:{swapped}")
    garbage = tmp_path / "garbage"
    shutil.copytree(onnx_tiny, garbage)
    (garbage / "trunk.onnx").write_bytes(b"not a protobuf")
    with pytest.raises(UsageError, match="not a loadable ONNX model"):
        load_encoder(f"onnx:{garbage}")
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "d1", "contents": "sparse retrieval"}\n')
    assert encode(["--corpus", str(corpus), "--encoder", f"onnx:{swapped}", "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "head.onnx" in err[0]
    assert not (tmp_path / "out").exists()


def test_export_cli_refusals(tmp_path, onnx_tiny, capsys):
    from pyserini_splare.export.__main__ import main as export

    out = tmp_path / "exists"
    out.mkdir()
    assert export(["--encoder", f"onnx:{onnx_tiny}", "--format", "onnx", "--output", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert export(["--encoder", f"onnx:{onnx_tiny}", "--format", "onnx", "--output", str(tmp_path / "again")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already an ONNX export" in err[0]
    assert not (tmp_path / "again").exists()


def test_decoder_trunk_export_equals_torch(tiny_llm, tmp_path):
    """A causal LM trunk (splade-llm on a tiny random Llama) exports too: the LM head on its final states."""
    from pyserini_splare.export.onnx_export import export_onnx

    cfg = export_onnx(f"splade-llm:{tiny_llm}", tmp_path / "x", log=_quiet)
    assert cfg["check_max_abs_diff"] < 1e-4
    texts = ["sparse retrieval with latent concepts", "a", "dogs and foxes run"]
    a, b = load_encoder(f"splade-llm:{tiny_llm}"), load_encoder(f"onnx:{tmp_path / 'x'}")
    for va, vb in zip(a.encode(texts), b.encode(texts)):
        assert va.ids.tolist() == vb.ids.tolist()
        np.testing.assert_allclose(va.weights, vb.weights, rtol=1e-4, atol=1e-5)


def test_splare_export_equals_torch(tiny_llm, tmp_path):
    """SPLARE: a layer-cut Llama with bidirectional attention, a Llama Scope JumpReLU SAE head (decoder-norm
    gating), BOS left out of pooling."""
    from test_models_llm import _checkpoint, _layer_hidden, _write_llama_scope  # noqa: E402

    from pyserini_splare.export.onnx_export import export_onnx

    hidden, mask = _layer_hidden(tiny_llm, 1)
    _write_llama_scope(tmp_path / "sae", 1, hidden, mask)
    ckpt = _checkpoint(tmp_path, tiny_llm, 1, tmp_path / "sae", attention="bidirectional", exclude_bos=True)
    cfg = export_onnx(str(ckpt), tmp_path / "x", log=_quiet)
    assert cfg["pooling"] == {"method": "max_log1p_relu", "skip": "bos"}
    texts = ["sparse retrieval with latent concepts", "a", "dogs and foxes run", "learned sparse models map text"]
    a, b = load_encoder(str(ckpt)), load_encoder(f"onnx:{tmp_path / 'x'}")
    assert a.space == b.space
    n = 0
    for va, vb in zip(a.encode(texts), b.encode(texts)):
        assert va.ids.tolist() == vb.ids.tolist()
        np.testing.assert_allclose(va.weights, vb.weights, rtol=1e-4, atol=1e-5)
        n += len(va.ids)
    assert n > len(texts)


# ---- OpenSearch inference-free models: documents exported, queries by the copied idf.json -------------


def test_opensearch_export_documents_and_idf_queries(tiny_opensearch, tmp_path):
    from pyserini_splare.export.onnx_export import export_onnx
    from test_models_opensearch import DOCS, QUERIES

    cfg = export_onnx(f"opensearch:{tiny_opensearch}", tmp_path / "x", log=_quiet)
    assert cfg["query"] == {"method": "idf_table", "file": "idf.json"} and cfg["source"]["type"] == "opensearch"
    assert (tmp_path / "x" / "idf.json").read_bytes() == (tiny_opensearch / "idf.json").read_bytes()
    onnx_enc, torch_enc = load_encoder(f"onnx:{tmp_path / 'x'}"), load_encoder(f"opensearch:{tiny_opensearch}")
    assert onnx_enc.space == torch_enc.space
    # Queries: the table lookup, exactly, and no graph opened for them.
    for a, b in zip(torch_enc.encode(QUERIES, "query"), onnx_enc.encode(QUERIES, "query")):
        assert a.ids.tolist() == b.ids.tolist() and a.weights.tolist() == b.weights.tolist()
    assert onnx_enc.trunk is None and onnx_enc.head is None
    # Documents: the torch encoder's, and sentence-transformers' SparseEncoder on the source folder.
    for a, b in zip(torch_enc.encode(DOCS, "doc"), onnx_enc.encode(DOCS, "doc")):
        assert a.ids.tolist() == b.ids.tolist()
        np.testing.assert_allclose(a.weights, b.weights, rtol=1e-5, atol=1e-5)
    _check_equal(onnx_enc, _st_model(tiny_opensearch, "relu"))


def test_opensearch_export_search_opens_no_model(tiny_opensearch, tmp_path):
    """encode --encoder onnx:OUT (documents on the graphs) -> exact index -> search --encoder onnx:OUT in a fresh
    interpreter: the same run as opensearch:DIR, with neither torch imported nor a graph opened."""
    from pyserini_splare.encode.__main__ import main as encode
    from pyserini_splare.export.onnx_export import export_onnx
    from pyserini_splare.index.__main__ import main as index
    from pyserini_splare.search.__main__ import main as search
    from test_models_opensearch import DOCS, QUERIES

    export_onnx(f"opensearch:{tiny_opensearch}", tmp_path / "x", log=_quiet)
    corpus, topics = tmp_path / "c.jsonl", tmp_path / "topics.tsv"
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "contents": t}) + "\n" for i, t in enumerate(DOCS)))
    # search refuses a query with no weighted token (one the table does not know): those are left out
    qv = load_encoder(f"opensearch:{tiny_opensearch}").encode(QUERIES, "query")
    topics.write_text("".join(f"q{i}\t{t}\n" for i, (t, v) in enumerate(zip(QUERIES, qv)) if len(v.ids)))
    assert encode(["--corpus", str(corpus), "--encoder", f"onnx:{tmp_path / 'x'}",
                   "--output", str(tmp_path / "v")]) == 0
    assert index(["--backend", "exact", "--input", str(tmp_path / "v"), "--index", str(tmp_path / "idx")]) == 0
    assert search(["--index", str(tmp_path / "idx"), "--topics", str(topics), "--encoder",
                   f"opensearch:{tiny_opensearch}", "--output", str(tmp_path / "torch.txt")]) == 0
    out = _search_in_child(tmp_path / "idx", f"onnx:{tmp_path / 'x'}", tmp_path / "onnx.txt", topics, extra=(),
                           report=("torch", "transformers", "onnxruntime"))
    assert "RC 0 LOADED []" in out, out
    assert (tmp_path / "onnx.txt").read_text() == (tmp_path / "torch.txt").read_text()
    assert (tmp_path / "onnx.txt").read_text().strip()


def test_opensearch_log1p_relu_export_equals_sentence_transformers(tiny_opensearch, tmp_path):
    """doc-v3's activation (log1p twice) in the folder sentence-transformers saves (Router layout)."""
    from sentence_transformers import SparseEncoder

    from pyserini_splare.export.onnx_export import export_onnx

    folder = tmp_path / "st"
    _st_model(tiny_opensearch, "log1p_relu").save_pretrained(str(folder))
    shutil.copy(tiny_opensearch / "idf.json", folder / "idf.json")
    cfg = export_onnx(f"opensearch:{folder}", tmp_path / "x", log=_quiet)
    assert cfg["pooling"]["method"] == "max_log1p_log1p_relu"
    _check_equal(load_encoder(f"onnx:{tmp_path / 'x'}"), SparseEncoder(str(folder), device="cpu"))


def test_opensearch_export_bad_files_are_one_error(tiny_opensearch, tmp_path, capsys):
    from pyserini_splare.encode.__main__ import main as encode
    from pyserini_splare.export.onnx_export import export_onnx

    export_onnx(f"opensearch:{tiny_opensearch}", tmp_path / "x", log=_quiet)
    (tmp_path / "x" / "idf.json").write_text('{"sparse": -1}')
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "d1", "contents": "sparse retrieval"}\n')
    assert encode(["--corpus", str(corpus), "--encoder", f"onnx:{tmp_path / 'x'}", "--output",
                   str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "idf.json" in err[0], err
    assert not (tmp_path / "out").exists()
    # The graphs of such an export are opened on the first document batch: a wrong one is still one line.
    shutil.copy(tiny_opensearch / "idf.json", tmp_path / "x" / "idf.json")
    shutil.copy(tmp_path / "x" / "trunk.onnx", tmp_path / "x" / "head.onnx")
    from test_models_opensearch import QUERIES

    enc = load_encoder(f"onnx:{tmp_path / 'x'}")  # queries still work: they open no graph
    assert sum(len(v.ids) for v in enc.encode(QUERIES, "query")) > 0 and enc.trunk is None
    assert encode(["--corpus", str(corpus), "--encoder", f"onnx:{tmp_path / 'x'}", "--output",
                   str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "inputs/outputs are not what the exporter writes" in err[0], err
    assert not (tmp_path / "out").exists()


# ---- MILCO: two views from one head graph ----------------------------------------------------------


def test_milco_export_equals_reference(tiny_milco, tmp_path):
    from pyserini_splare.export.onnx_export import export_onnx

    ckpt, ref = tiny_milco
    # The tiny XLM-R has 128 positions and a tokenizer that declares no limit: the export's own check
    # text (~80 words) must be cut to fit, as --max-length-doc would.
    cfg = export_onnx(f"milco:{ckpt}", tmp_path / "x", max_length_query=64, max_length_doc=64, log=_quiet)
    en = len(ref["en_tok"])
    assert cfg["pooling"] == {"method": "max_log1p_relu+sum_per_source_id", "pivot_size": en, "echo": True}
    assert cfg["head_outputs"] == en + 1 and cfg["check_max_abs_diff"] < 1e-4
    onnx_enc = load_encoder(f"onnx:{tmp_path / 'x'}")
    torch_enc = load_encoder(f"milco:{ckpt}", max_length_query=64, max_length_doc=64)
    assert onnx_enc.space == torch_enc.space
    want = milco_reference(ref, MILCO_TEXTS)
    for kind in ("query", "doc"):
        got = np.stack([v.to_dense(onnx_enc.space.size) for v in onnx_enc.encode(MILCO_TEXTS, kind)])
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
        assert (got[:, :en] > 0).any() and (got[:, en:] > 0).any()
    # Repeated source tokens sum into one LexEcho weight (the third text repeats 检索).
    for a, b in zip(torch_enc.encode(MILCO_TEXTS), onnx_enc.encode(MILCO_TEXTS)):
        assert a.ids.tolist() == b.ids.tolist()


def test_milco_without_echo_export(tiny_milco, tmp_path):
    from pyserini_splare.export.onnx_export import export_onnx

    ckpt, ref = tiny_milco
    d = without_echo(ckpt, tmp_path / "noecho")
    out = export_onnx(f"milco:{d}", tmp_path / "x", max_length_query=64, max_length_doc=64, log=_quiet)
    en = len(ref["en_tok"])
    assert out["pooling"]["echo"] is False and out["head_outputs"] == en
    enc = load_encoder(f"onnx:{tmp_path / 'x'}")
    got = np.stack([v.to_dense(enc.space.size) for v in enc.encode(MILCO_TEXTS)])
    np.testing.assert_allclose(got[:, :en], milco_reference(ref, MILCO_TEXTS)[:, :en], atol=1e-5, rtol=1e-5)
    assert not got[:, en:].any()


# ---- document parity after quantization: ONNX vs torch's own noise floor ----------------------------


def _quantized_disagreement(a, b):
    """(documents whose x100 vectors differ, largest integer difference of any weight)."""
    from pyserini_splare.formats.quant import quantize

    docs, worst = 0, 0
    for x, y in zip(a, b, strict=True):
        qx = {i: int(q) for i, q in zip(x.ids.tolist(), quantize(x.weights, 100.0)) if q > 0}
        qy = {i: int(q) for i, q in zip(y.ids.tolist(), quantize(y.weights, 100.0)) if q > 0}
        if qx != qy:
            docs += 1
            worst = max(worst, max(abs(qx.get(i, 0) - qy.get(i, 0)) for i in set(qx) | set(qy)))
    return docs, worst


def test_document_parity_is_at_torchs_own_noise_floor(splade_tiny_path, onnx_tiny, shared_data):
    """Issue 22 asked for identical quantized (x100) vectors on >= 99.9 % of documents. torch does not reproduce
    itself that well: on CACM's 3,204 documents (512 tokens, 1 thread) the same model in batches of 1 instead
    of 32 (other padding, other GEMM shapes) gives another vector for 15 documents (0.47 %, 99.53 % identical),
    ONNX at the same batches for 43 (1.34 %); every difference either way is one weight one quantum apart
    (a weight within a few ulps of a half quantum). docs/models.md, "Document parity after quantization".
    Asserted on the first 600 documents: every difference is one quantum, and ONNX disagrees with torch at
    most 3x as often as torch disagrees with itself (measured 2.9x on the whole corpus), plus 1 % of the
    documents for the sampling noise of counts this small (600 documents: 5 vs 4 measured)."""
    import torch

    from pyserini_splare.corpus import open_corpus

    texts = [d.text for d in itertools.islice(open_corpus(str(shared_data / "cacm" / "cacm.tar.gz")), 600)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ref = load_encoder(f"splade:{splade_tiny_path}", max_length_doc=512)
        ref.batch_size = 32
        t32 = ref.encode(texts, "doc")
        ref.batch_size = 1
        t1 = ref.encode(texts, "doc")
    finally:
        torch.set_num_threads(threads)
    onx = load_encoder(f"onnx:{onnx_tiny}", threads=1, max_length_doc=512)
    o32 = onx.encode(texts, "doc")
    self_docs, self_q = _quantized_disagreement(t32, t1)
    onnx_docs, onnx_q = _quantized_disagreement(t32, o32)
    assert self_q <= 1 and onnx_q <= 1
    assert onnx_docs <= 3 * self_docs + 0.01 * len(texts), (onnx_docs, self_docs)
