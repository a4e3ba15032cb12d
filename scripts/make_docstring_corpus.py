"""Write a real-text corpus from the docstrings of the installed Python code, for benchmarks.

Why: the backends benchmark needs real encoder output at a size CACM (3,204 documents) cannot give,
and this workplace has no internet. The docstrings of the standard library and site-packages are
real English technical prose (~94k passages of >= 20 words, ~10M words with this project's
dependencies installed): encoded with a real model they give real learned-sparse vectors. There
are no relevance judgments, so this is for speed and recall-vs-exact only, never for effectiveness.

Queries are the first sentence of docstrings held out of the corpus (a deterministic sample), the
way a user would type a function's purpose.

    python scripts/make_docstring_corpus.py --out /tmp/docstrings --queries 200
    # -> /tmp/docstrings/corpus.jsonl ({"id", "text"}), /tmp/docstrings/topics.tsv (qid <TAB> text)
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import sys
import sysconfig
from pathlib import Path


def docstrings(roots: list[str], min_words: int):
    """``(id, text)`` of every module/class/function docstring with at least ``min_words`` words, in a
    stable order (sorted paths), whitespace collapsed, exact duplicates dropped."""
    seen: set[bytes] = set()
    for root in roots:
        for d, dirs, files in os.walk(root):
            dirs.sort()
            for f in sorted(files):
                if not f.endswith(".py"):
                    continue
                path = os.path.join(d, f)
                try:
                    with open(path, encoding="utf-8") as fh:
                        tree = ast.parse(fh.read())
                except (SyntaxError, UnicodeDecodeError, ValueError, OSError, RecursionError):
                    continue
                rel = os.path.relpath(path, root)
                for node in ast.walk(tree):
                    if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                        continue
                    s = ast.get_docstring(node)
                    if not s:
                        continue
                    text = " ".join(s.split())
                    if len(text.split()) < min_words:
                        continue
                    h = hashlib.blake2b(text.encode(), digest_size=8).digest()
                    if h in seen:
                        continue
                    seen.add(h)
                    yield f"{rel}:{getattr(node, 'lineno', 0)}", text


def first_sentence(text: str, max_words: int = 24) -> str:
    s = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    return " ".join(s.split()[:max_words])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output folder (corpus.jsonl, topics.tsv)")
    p.add_argument("--queries", type=int, default=200, help="docstrings held out as queries")
    p.add_argument("--min-words", type=int, default=20)
    p.add_argument("--limit", type=int, default=0, help="at most this many corpus documents (0: all)")
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    roots = [sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"]]
    n_docs = n_q = 0
    with open(out / "corpus.jsonl.tmp", "w", encoding="utf-8") as c, open(out / "topics.tsv.tmp", "w", encoding="utf-8") as t:
        for i, (docid, text) in enumerate(docstrings(roots, a.min_words)):
            # every 97th docstring is a query candidate (deterministic, spread over all packages)
            if i % 97 == 0 and n_q < a.queries:
                q = first_sentence(text)
                if len(q.split()) >= 4:
                    t.write(f"q{n_q}\t{q}\n")
                    n_q += 1
                    continue
            if a.limit and n_docs >= a.limit:
                continue
            c.write(json.dumps({"id": f"d{n_docs}", "text": text, "source": docid}, ensure_ascii=False) + "\n")
            n_docs += 1
    os.replace(out / "corpus.jsonl.tmp", out / "corpus.jsonl")
    os.replace(out / "topics.tsv.tmp", out / "topics.tsv")
    print(f"{n_docs} documents -> {out / 'corpus.jsonl'}, {n_q} queries -> {out / 'topics.tsv'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
