"""python -m pyserini_splare.repro.stage: put a registry data file alone in a folder of its own.

Anserini's HtmlCollection indexes every file of its input folder; in the shared data folder
``cacm.tar.gz`` sits beside the CACM topics, qrels and a reference run, which would be indexed as three
more "documents" (one of them, the 58,000-line run, shifts BM25's length normalisation: MAP drops from
0.3123 to 0.2490). The local matrix therefore indexes a folder holding only a symlink to the collection.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .._errors import UsageError, cli_main, run

EPILOG = """\
examples:
  python -m pyserini_splare.repro.stage --file cacm-collection --into runs/local/collections/cacm
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pyserini_splare.repro.stage",
                                description="Symlink a registered data file (see `search --list-topics`, section "
                                            "files) into a folder of its own, for collection readers that index "
                                            "whole folders.", epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--file", required=True, help="registry name of the file (e.g. cacm-collection)")
    p.add_argument("--into", required=True, help="folder to create; must not exist or be empty")
    p.add_argument("--data-dir", default=None, help="data folder (default $PYSERINI_SPLARE_DATA)")
    return p


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    from ..topics import get_file

    src = get_file(args.file, args.data_dir).resolve()
    into = Path(args.into)
    if into.exists() and (not into.is_dir() or any(into.iterdir())):
        raise UsageError(f"{into} exists and is not an empty folder")
    into.mkdir(parents=True, exist_ok=True)
    os.symlink(src, into / src.name)
    print(f"{into / src.name} -> {src}")
    return 0


if __name__ == "__main__":
    run(main)
