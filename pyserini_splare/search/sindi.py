"""SINDI search (``pyvsag``) behind the common :class:`SparseSearcher` interface.

SINDI returns distances ``1 - inner product`` in float32; scores here are ``round(1 - distance)``, the integer
dot products while they stay below 2^24 (:mod:`pyserini_splare.index.sindi`); hits are ordered by (score desc,
docid asc). Without pruning the top k is exact (tested against the exact backend).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Mapping

import numpy as np

from .._errors import UsageError
from .base import Hit, SparseSearcher, check_k_threads, sort_hits


_EXACT_LIMIT = float(1 << 24)  # float32 holds every integer below it


class SindiSearcher(SparseSearcher):
    backend = "sindi"

    def __init__(self, index_dir, meta=None, **options):
        """``options``: :class:`pyserini_splare.backends.SindiSearch` (defaults and limits declared there)."""
        from ..backends import get_backend
        from ..formats.docids import read_docids
        from ..formats.sindi_index import INDEX_FILE, import_pyvsag

        o = get_backend(self.backend).check_search_options(options)
        super().__init__(index_dir, meta)
        pyvsag = import_pyvsag()
        path = Path(index_dir) / self.meta.get("index_file", INDEX_FILE)
        params = self.meta.get("sindi_params")
        if not path.is_file() or not isinstance(params, dict):
            raise UsageError(f"{index_dir}: SINDI index file or its parameters are missing; rebuild it")
        self.docids = read_docids(index_dir)
        self._index = pyvsag.Index("sindi", json.dumps(params))
        try:
            self._index.load(str(path))
        except Exception as e:  # pyvsag raises RuntimeError/ValueError on a corrupt or foreign file
            raise UsageError(f"{path}: cannot load the SINDI index ({str(e).strip()[:200]}); rebuild it") from None
        knobs = ("n_candidate", "query_prune_ratio", "term_prune_ratio")
        self._params = json.dumps({"sindi": {k: o[k] for k in knobs}})
        self.num_docs = int(self.docids.size)
        self._warned = False

    def _one(self, q: Mapping[str, int], k: int) -> list[Hit]:
        if not q:
            return []
        ids = self.space.ids(list(q)).astype(np.uint32)
        w = np.fromiter(q.values(), dtype=np.float32, count=len(q))
        order = np.argsort(ids, kind="stable")  # a CSR row's terms in id order, as the index was built
        got, dist = self._index.knn_search(np.array([0, len(q)], dtype=np.uint32), ids[order], w[order],
                                           int(k), self._params)
        got, dist = np.asarray(got).ravel(), np.asarray(dist, dtype=np.float64).ravel()
        ok = got >= 0  # fewer matches than k: SINDI pads with -1
        scores = np.rint(1.0 - dist[ok])
        if not self._warned and scores.size and scores.max() >= _EXACT_LIMIT:
            # float32 sums stop being exact integers here: hits and ties may differ from exact's
            self._warned = True
            print(f"warning: a SINDI score reached {scores.max():.0f} >= 2^24: scores above it are float32-rounded, "
                  "so the top k may differ from the exact backend's (quantize with a smaller scale)", file=sys.stderr)
        keep = scores > 0  # a document sharing no term with the query scores 0: not a hit (as exact)
        return sort_hits(zip(self.docids[got[ok][keep]].tolist(), scores[keep].tolist()), k)

    def batch_search(self, queries: Mapping[str, Mapping[str, float]], k: int = 1000, threads: int = 1) -> dict[str, list[Hit]]:
        """One query at a time (pyvsag searches one sparse query per call); ``threads`` is checked, not used."""
        check_k_threads(k, threads)
        return {qid: self._one(self.prepare(qid, v), k) for qid, v in queries.items()}
