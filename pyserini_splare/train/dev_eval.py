"""Dev evaluation during training, through this toolkit's own pipeline: encode -> exact index -> search -> eval.

What is measured is what ``encode --encoder KIND:DIR`` + ``index`` + ``search`` would give with the saved
checkpoint.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Sequence

ENCODE_BATCH = 64


def evaluate_model(model, topics: dict[str, str], corpus: str, qrels: str, metrics: Sequence[str], workdir: str | Path,
                   *, hits: int = 100, keep_vectors: bool = False, desc: str | None = None,
                   n_docs: int | None = None) -> dict[str, float]:
    """Encode ``corpus`` and ``topics`` with ``model`` (a SparseModel), search, evaluate; returns {metric: value}.

    ``workdir`` receives ``vectors/`` (kept with ``keep_vectors``), ``index/`` (removed) and ``run.txt``.
    ``desc``: show a progress bar of its own over the texts encoded (``n_docs`` documents + the queries).
    """
    from .._console import progress
    from ..corpus import open_corpus
    from ..eval import evaluate
    from ..formats.runs import write_run
    from ..formats.vectors_writer import VectorsWriter
    from ..index.backends import build_index
    from ..search.registry import open_searcher

    workdir = Path(workdir)
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    was_training = model.training
    model.eval()
    bar = progress(total=None if n_docs is None else n_docs + len(topics), desc=desc, unit="text", leave=False,
                   **({} if desc else {"disable": True}))

    def encode_docs(batch):
        for d, v in zip(batch, model.encode([d.text for d in batch], "doc")):
            w.write(d.id, v)
        bar.update(len(batch))

    try:
        vec_dir = workdir / "vectors"
        with VectorsWriter(vec_dir, space=model.space, encoder=model.spec(), pooling=model.pooling_meta()) as w:
            batch: list = []
            for doc in open_corpus(corpus):
                batch.append(doc)
                if len(batch) == ENCODE_BATCH:
                    encode_docs(batch)
                    batch = []
            encode_docs(batch)
        qids = list(topics)
        qvecs = model.encode([topics[q] for q in qids], "query")
        bar.update(len(qids))
    finally:
        bar.close()
        model.train(was_training)
    index_dir = workdir / "index"
    build_index("exact", [os.fspath(vec_dir)], os.fspath(index_dir))
    queries = {}
    for q, v in zip(qids, qvecs):
        v = v.nonzero()
        if len(v):
            queries[q] = {t: float(x) for t, x in zip(model.space.terms(v.ids), v.weights)}
    with open_searcher(index_dir) as searcher:
        # A query whose weights all round to 0 retrieves nothing (and counts 0 in the mean, as trec_eval -c).
        results = {}
        for q, vec in queries.items():
            try:
                results.update(searcher.batch_search({q: vec}, k=hits))
            except Exception as e:  # noqa: BLE001 - an empty quantized query is a 0, not a failed evaluation
                from .._errors import UsageError

                if not isinstance(e, UsageError):
                    raise
    run = {q: dict(h) for q, h in results.items() if h}
    write_run(workdir / "run.txt", run, "dev")
    shutil.rmtree(index_dir)
    if not keep_vectors:
        shutil.rmtree(vec_dir)
    # an early model may retrieve no judged document: that is a score of 0, not a wrong qrels file
    return evaluate(qrels, run, list(metrics), allow_disjoint=True) if run else {m: 0.0 for m in metrics}
