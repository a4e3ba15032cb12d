"""scripts/wordnet_corpus.py: WordNet's data.* lines -> one {id, contents} document per synset."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import wordnet_corpus  # noqa: E402

HEADER = "  1 This software and database is being provided to you, the LICENSEE, by  \n"
# one line per part of speech, in WordNet 3.0's format: offset, lex file, type, word count (hex),
# word/lex-id pairs, pointer count and pointers, "|", the gloss; the word count is hexadecimal (0b: 11)
LINES = {
    "noun": "00001740 03 n 02 entity 0 physical_entity 0 001 ~ 00001930 n 0000 | that which exists  \n",
    "verb": "00001740 29 v 01 breathe 0 000 01 + 02 00 | draw air into, and expel out of, the lungs  \n",
    "adj": "00001740 00 a 01 able(a) 0 000 | having the necessary means; \"able to swim\"  \n",
    "adv": "00001740 02 r 0b a 0 b 0 c 0 d 0 e 0 f 0 g 0 h 0 i 0 j 0 k 0 000 | eleven words  \n",
}


def test_one_document_per_synset_with_distinct_ids(tmp_path):
    for name, line in LINES.items():
        (tmp_path / f"data.{name}").write_text(HEADER + line, encoding="latin-1")
    out = tmp_path / "corpus.jsonl"
    assert wordnet_corpus.main(["--wordnet-dir", str(tmp_path), "--output", str(out)]) == 0
    docs = [json.loads(x) for x in out.read_text().splitlines()]
    assert docs == [
        {"id": "n00001740", "contents": "entity; physical entity. that which exists"},
        {"id": "v00001740", "contents": "breathe. draw air into, and expel out of, the lungs"},
        {"id": "a00001740", "contents": 'able. having the necessary means; "able to swim"'},
        {"id": "r00001740", "contents": "a; b; c; d; e; f; g; h; i; j; k. eleven words"},
    ]
    assert not (tmp_path / "corpus.jsonl.partial").exists()


def test_missing_wordnet_is_a_one_line_error(tmp_path, capsys):
    assert wordnet_corpus.main(["--wordnet-dir", str(tmp_path), "--output", str(tmp_path / "c.jsonl")]) == 2
    assert "wordnet-base" in capsys.readouterr().err
    assert not (tmp_path / "c.jsonl").exists()


def test_bad_outputs_and_topics_fail_before_anything_is_written(tmp_path, capsys):
    for name, line in LINES.items():
        (tmp_path / f"data.{name}").write_text(HEADER + line, encoding="latin-1")
    wn = ["--wordnet-dir", str(tmp_path)]
    assert wordnet_corpus.main(wn + ["--output", str(tmp_path / "no" / "c.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err
    # topics that cannot be found: one error line, neither file written
    out, q = tmp_path / "c.jsonl", tmp_path / "q.tsv"
    assert wordnet_corpus.main(wn + ["--output", str(out), "--queries", str(q), "--topics", "cacm",
                                     "--data-dir", str(tmp_path / "nodata")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert not out.exists() and not q.exists()
    # an existing output is kept unless --overwrite
    out.write_text("mine\n")
    assert wordnet_corpus.main(wn + ["--output", str(out)]) == 2
    assert out.read_text() == "mine\n"
    assert wordnet_corpus.main(wn + ["--output", str(out), "--overwrite"]) == 0
    assert len(out.read_text().splitlines()) == 4
