"""pyserini_splare.testing: the synthetic generator and the CACM pairs command, against hand-built inputs."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest

from pyserini_splare.testing import cacm_pairs, synth


def _cacm_page(title: str, abstract: str | None) -> bytes:
    """A page shaped like Anserini's cacm.tar.gz ones: blank-line separated title, abstract, date, authors."""
    blocks = [title] + ([abstract] if abstract else []) + ["CACM December, 1958", "Perlis, A. J."]
    return ("<html>\n<pre>\n\n\n" + "\n\n".join(blocks) + "\n\n1\t5\t1\n</pre>\n</html>\n").encode()


@pytest.fixture
def tarball(tmp_path):
    pages = {f"CACM-{i:04d}": (f"Title {i} &amp; more", f"Abstract\nnumber {i}." if i % 3 else None)
             for i in range(1, 13)}
    path = tmp_path / "cacm.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for name, (title, abstract) in pages.items():
            data = _cacm_page(title, abstract)
            info = tarfile.TarInfo(f"{name}.html")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    # the documents with an abstract, tags stripped, entities decoded, whitespace collapsed
    expected = {name: (title.replace("&amp;", "&"), " ".join(abstract.split()))
                for name, (title, abstract) in pages.items() if abstract}
    return path, expected


def test_pairs_are_the_pages_with_an_abstract(tarball):
    path, expected = tarball
    assert cacm_pairs.title_abstract_pairs(path) == expected


def test_cli_writes_the_split_and_refuses_to_overwrite(tarball, tmp_path, capsys):
    path, expected = tarball
    out = tmp_path / "pairs"
    assert cacm_pairs.main([str(path), str(out), "--holdout", "0.25"]) == 0
    corpus = [json.loads(x) for x in (out / "corpus" / "abstracts.jsonl").read_text().splitlines()]
    assert corpus == [{"id": d, "contents": expected[d][1]} for d in sorted(expected)]
    split = {}
    for side in ("train", "heldout"):
        queries = [x.split("\t") for x in (out / f"{side}_queries.tsv").read_text().splitlines()]
        assert all(expected[d][0] == t for d, t in queries)
        pairs = [x.split("\t") for x in (out / f"{side}_pairs.tsv").read_text().splitlines()]
        assert pairs == [[d, d] for d, _ in queries]
        split[side] = {d for d, _ in queries}
    assert len(split["heldout"]) == round(len(expected) * 0.25) and not split["train"] & split["heldout"]
    assert split["train"] | split["heldout"] == set(expected)
    assert (out / "heldout_qrels.txt").read_text() == "".join(f"{d} 0 {d} 1\n" for d in sorted(split["heldout"]))
    capsys.readouterr()
    before = sorted(p.name for p in out.rglob("*"))
    assert cacm_pairs.main([str(path), str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "--overwrite" in err[0]
    assert sorted(p.name for p in out.rglob("*")) == before
    assert cacm_pairs.main([str(tmp_path / "missing.tar.gz"), str(tmp_path / "o2")]) == 2
    assert not (tmp_path / "o2").exists()


def test_generator_is_deterministic_and_shaped_like_its_config():
    cfg = synth.SynthConfig(n_features=5000, doc_terms=60, query_terms=12, active_features=1500, seed=3)
    docs, queries = synth.generate(cfg, 300, 20)
    again, _ = synth.generate(cfg, 300, 20)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(docs, again))
    lengths = np.array([ids.size for ids, _ in docs])
    assert abs(lengths.mean() - cfg.doc_terms) < 3  # Poisson around the target l0, 300 draws
    for ids, w in docs + queries:
        assert np.all(np.diff(ids) > 0) and ids.min() >= 0 and ids.max() < cfg.n_features
        assert np.all((w > 0) & (w <= 5.0)) and w.dtype == np.float32
    # streamed and generated collections are the same vectors
    sdocs, squeries = synth.stream(cfg, 300, 20)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(list(sdocs) + list(squeries), docs + queries))


def test_written_collection_reads_back_quantized(tmp_path):
    from pyserini_splare.formats.query_vectors import read_query_vectors
    from pyserini_splare.formats.vectors_reader import open_collection

    cfg = synth.SynthConfig(n_features=4000, doc_terms=30, query_terms=8, active_features=1000, seed=1)
    docs, queries = synth.generate(cfg, 50, 5)
    vdir, qfile = synth.write_collection(docs, queries, cfg, tmp_path / "c", quant_scale=100.0)
    got = dict((d, v) for d, v, _ in open_collection(vdir).iter_records())
    for i, (ids, w) in enumerate(docs):  # round(100 w), zeros dropped, terms named L<id>
        assert got[synth.docid(i)] == {f"L{t}": int(q) for t, q in zip(ids, np.rint(w * 100.0)) if q > 0}
    qs = read_query_vectors(qfile)
    assert qs["q0"] == {f"L{t}": int(q) for t, q in zip(queries[0][0], np.rint(queries[0][1] * 100.0)) if q > 0}


def test_synth_cli_refuses_existing_output(tmp_path, capsys):
    out = tmp_path / "s"
    args = ["--preset", "splade", "--docs", "20", "--queries", "2", "--out", str(out)]
    assert synth.main(args) == 0
    assert len((out / "queries.jsonl").read_text().splitlines()) == 2
    capsys.readouterr()
    assert synth.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert synth.main(args + ["--docs", "0"]) == 2
