"""A real English corpus of ~118k short documents for benchmarks at >= 100k, offline: WordNet 3.0's
synsets (Debian's ``wordnet-base``: ``apt-get install wordnet-base``), one document per synset, its
words then its gloss; and a query file from the registry's English topics.

    python scripts/wordnet_corpus.py --output W/corpus.jsonl --queries W/queries.tsv
    M=$(python -c "import cognition, os; print(os.path.dirname(cognition.__file__))")/model
    python -m pyserini_splare.encode --corpus W/corpus.jsonl --encoder splade:$M --output W/vectors --max-length 128
    python scripts/bench_search.py run --vectors W/vectors --topics W/queries.tsv --encoder splade:$M --work W/bench

Ids are the part of speech's letter (n, v, a, r: WordNet's own, adjective satellites under ``a``)
and the synset's byte offset, unique within a part of speech's file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

POS = (("noun", "n"), ("verb", "v"), ("adj", "a"), ("adv", "r"))
TOPICS = ("wsdm-cup-2026-test", "wsdm-cup-2026-dev", "neuclir22-en-title")


def synsets(wordnet_dir: Path):
    """``(id, text)`` per synset line of ``data.{noun,verb,adj,adv}`` (license header lines, which start
    with two spaces, skipped). A line: offset, lex file, type, word count (hex), word/lex-id pairs,
    pointers..., ``|`` gloss."""
    for name, letter in POS:
        with open(wordnet_dir / f"data.{name}", encoding="latin-1") as f:
            for line in f:
                if line.startswith("  ") or not line.strip():
                    continue
                head, _, gloss = line.partition(" | ")
                fields = head.split()
                n_words = int(fields[3], 16)
                # "_" joins a collocation's words; "(a)"/"(p)" mark an adjective's position
                words = [fields[4 + 2 * i].replace("_", " ").split("(")[0] for i in range(n_words)]
                yield f"{letter}{fields[0]}", "; ".join(words) + ". " + gloss.strip()


def _main(argv=None) -> int:
    from pyserini_splare._errors import UsageError
    from pyserini_splare._outputs import atomic_file, check_output_file

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--wordnet-dir", default="/usr/share/wordnet", help="folder of WordNet's data.* files")
    p.add_argument("--output", required=True, help="corpus JSONL to write ({id, contents} per line)")
    p.add_argument("--queries", default=None, help="also write these English topics as TSV (qid<TAB>text)")
    p.add_argument("--topics", default=",".join(TOPICS), help="registry topic names for --queries "
                   "(ids prefixed t/d/n... by position, as two sets may share ids)")
    p.add_argument("--data-dir", default=None, help="topics folder (default: $PYSERINI_SPLARE_DATA or the cache)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    a = p.parse_args(argv)
    wn = Path(a.wordnet_dir)
    if not (wn / "data.noun").is_file():
        raise UsageError(f"{wn}/data.noun not found (apt-get install wordnet-base, or --wordnet-dir)")
    out = check_output_file(a.output, overwrite=a.overwrite)
    lines = []
    if a.queries:  # read (and checked) before anything is written
        check_output_file(a.queries, overwrite=a.overwrite, what="--queries")
        from pyserini_splare.topics import get_topics

        for spec in a.topics.split(","):
            prefix = spec.split("-")[-1][0] if spec.startswith("wsdm") else spec[0]
            for qid, text in get_topics(spec, a.data_dir).items():
                lines.append(f"{prefix}{qid}\t{' '.join(text.split())}\n")
    n = 0
    with atomic_file(out) as f:
        for docid, text in synsets(wn):
            f.write(json.dumps({"id": docid, "contents": text}, ensure_ascii=False) + "\n")
            n += 1
    print(f"wrote {out}: {n:,} documents", file=sys.stderr)
    if a.queries:
        with atomic_file(a.queries) as f:
            f.write("".join(lines))
        print(f"wrote {a.queries}: {len(lines)} queries", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    from pyserini_splare._errors import cli_main

    return cli_main(_main)(argv)


if __name__ == "__main__":
    sys.exit(main())
