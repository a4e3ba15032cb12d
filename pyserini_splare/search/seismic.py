"""Seismic approximate search (``pyseismic-lsr``) behind the common :class:`SparseSearcher` interface.

``query_cut`` and ``heap_factor`` trade speed for accuracy (Bruch et al., SIGIR 2024, Alg. 2; docs/search.md);
scores are the integer dot products of the quantized weights and hits are ordered by (score desc, docid asc),
so with every query term, a tiny ``heap_factor`` and unpruned lists results equal exact search (tested).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from .._errors import UsageError
from .base import Hit, SparseSearcher, sort_hits, check_k_threads


class SeismicSearcher(SparseSearcher):
    backend = "seismic"

    def __init__(self, index_dir, meta=None, **options):
        """``options``: :class:`pyserini_splare.backends.SeismicSearch` (defaults and limits declared there)."""
        from ..backends import get_backend

        o = get_backend(self.backend).check_search_options(options)
        super().__init__(index_dir, meta)
        self.query_cut, self.heap_factor, self.n_knn = o["query_cut"], o["heap_factor"], o["n_knn"]
        self.sorted_summaries = o["sorted_summaries"]
        import seismic

        from ..formats.seismic_index import INDEX_FILE, quiet_stdout, seismic_classes

        variant, Index, _ = seismic_classes(self.space.size)
        if self.meta.get("variant", "") != variant:
            raise UsageError(f"{index_dir}: index metadata says Seismic variant {self.meta.get('variant')!r}, "
                             f"expected {variant!r} for a feature space of {self.space.size} terms")
        path = Path(index_dir) / self.meta.get("index_file", INDEX_FILE)
        if not path.is_file():
            raise UsageError(f"{index_dir}: Seismic index file {path.name} is missing")
        try:
            with quiet_stdout():
                self._index = Index.load(str(path))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # Rust panics surface as pyo3 PanicException (a BaseException)
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UsageError(f"{path}: cannot load the Seismic index ({msg[:200]}); rebuild it") from None
        self._sdtype = seismic.get_seismic_string()
        self.num_docs = int(self._index.len)

    def configure(self, **options) -> None:
        """Change search options on the open index (no reload; what calibration walks its grid with)."""
        from ..backends import get_backend

        for name, value in get_backend(self.backend).check_options("search", options, complete=False).items():
            setattr(self, name, value)

    @property
    def options(self) -> dict:
        """The search options in force."""
        return dict(query_cut=self.query_cut, heap_factor=self.heap_factor, n_knn=self.n_knn,
                    sorted_summaries=self.sorted_summaries)

    @property
    def knn_neighbours(self) -> int:
        """Neighbours per document of the index's kNN graph (0: built without one)."""
        return int((self.meta.get("seismic_build") or {}).get("nknn") or 0)

    def _arrays(self, q: Mapping[str, int]):
        return np.asarray(list(q), dtype=self._sdtype), np.fromiter(q.values(), np.float32, len(q))

    def batch_search(self, queries: Mapping[str, Mapping[str, float]], k: int = 1000, threads: int = 1) -> dict[str, list[Hit]]:
        check_k_threads(k, threads)
        qids = list(queries)
        if not qids:
            return {}
        prepared = [self._arrays(self.prepare(qid, queries[qid])) for qid in qids]
        common = dict(k=int(k), query_cut=self.query_cut, heap_factor=self.heap_factor, n_knn=self.n_knn,
                      sorted=self.sorted_summaries)
        if len(qids) == 1:
            res = [self._index.search("0", prepared[0][0], prepared[0][1], **common)]
        else:
            # Query ids given to Seismic are positions: its batch_search returns the result lists in
            # completion order, not input order (seen with pyseismic-lsr 0.5.4, one thread or many),
            # so each list is matched back by the query id carried in its hits.
            res = self._index.batch_search(np.asarray([str(i) for i in range(len(qids))], dtype=self._sdtype),
                                           [p[0] for p in prepared], [p[1] for p in prepared],
                                           num_threads=int(threads), **common)
        by_pos: dict[int, list] = {}
        for hits in res:
            if hits:
                by_pos[int(hits[0][0])] = hits
        # Hits are (query_id, score, docid); a query matching nothing has an empty list.
        return {qid: sort_hits(((d, sc) for _, sc, d in by_pos.get(i, [])), k) for i, qid in enumerate(qids)}
