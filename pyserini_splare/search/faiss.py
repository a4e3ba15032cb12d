"""Dense search over a faiss index built by ``python -m pyserini_splare.index --backend faiss``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .._errors import UsageError
from .base import Hit, Searcher, sort_hits, check_k_threads


class FaissSearcher(Searcher):
    """Inner-product search with faiss; queries are ``{qid: float vector of the index's dim}``.

    Options (``--searcher-options``): ``efSearch`` (HNSW) and ``nprobe`` (IVF) override the values
    the index was built with. Ties at the cut-off are resolved like every other backend (score
    descending, docid ascending): faiss returns tied vectors in arbitrary order, so when the k-th
    score equals the last one fetched we fetch deeper until the tie is complete.
    """

    backend = "faiss"

    def __init__(self, index_dir, meta=None, **options):
        """``options``: :class:`pyserini_splare.backends.FaissSearch` (limits declared there)."""
        from ..backends import get_backend

        o = get_backend(self.backend).check_search_options(options)
        efSearch, nprobe = o["efSearch"], o["nprobe"]
        super().__init__(index_dir, meta)
        import faiss

        from ..formats.docids import read_docids
        from ..formats.faiss_index import FAISS_FILE, check_faiss_folder

        d = Path(index_dir)
        if "dense" not in self.meta:
            raise UsageError(f"{index_dir}: index metadata has no dense vectors metadata")
        check_faiss_folder(d)
        self.dense_meta = self.meta["dense"]
        self.encoder_spec = self.dense_meta.get("encoder")
        self.dim = int(self.dense_meta["dim"])
        try:
            self._index = faiss.read_index(str(d / FAISS_FILE))
        except RuntimeError as e:
            raise UsageError(f"{d / FAISS_FILE}: cannot read faiss index ({str(e).strip().splitlines()[-1]})") from None
        self.docids = read_docids(d, int(self._index.ntotal))
        if efSearch is not None:
            if not hasattr(self._index, "hnsw"):
                raise UsageError("efSearch applies to HNSW indexes only")
            self._index.hnsw.efSearch = efSearch
        if nprobe is not None:
            if not hasattr(self._index, "nprobe"):
                raise UsageError("nprobe applies to IVF indexes only")
            self._index.nprobe = nprobe
        self.num_docs = int(self.docids.size)

    def _matrix(self, queries: Mapping[str, Any]) -> np.ndarray:
        rows = []
        for qid, v in queries.items():
            a = np.asarray(v, dtype=np.float32)
            if a.ndim != 1 or a.shape[0] != self.dim:
                raise UsageError(f"query {qid!r}: expected a vector of {self.dim} floats, got shape {a.shape}")
            if not np.isfinite(a).all():
                raise UsageError(f"query {qid!r}: non-finite values")
            rows.append(a)
        return np.ascontiguousarray(np.stack(rows))

    def _raw(self, x: np.ndarray, depth: int):
        scores, idx = self._index.search(x, depth)
        return scores, idx

    def batch_search(self, queries: Mapping[str, Any], k: int = 1000, threads: int = 1) -> dict[str, list[Hit]]:
        check_k_threads(k, threads)
        if not queries:
            return {}
        import faiss

        faiss.omp_set_num_threads(int(threads))
        qids = list(queries)
        x = self._matrix(queries)
        # one hit beyond k shows whether the k-th score is tied with a hit faiss left out
        depth = min(k + 1, self.num_docs)
        scores, idx = self._raw(x, depth)
        out = {}
        for i, qid in enumerate(qids):
            s, ix = scores[i], idx[i]
            d = depth
            # the tie at the k-th score may continue past what was fetched: fetch deeper until it ends
            while d < self.num_docs and len(s) > k and ix[-1] >= 0 and s[k - 1] == s[-1]:
                d = min(self.num_docs, d * 2)
                s, ix = (a[0] for a in self._raw(x[i:i + 1], d))
            found = ix >= 0  # faiss pads with -1 when fewer than depth vectors are reachable (IVF, HNSW)
            out[qid] = sort_hits(zip(self.docids[ix[found]].tolist(), s[found].tolist()), k)
        return out

    def close(self) -> None:
        self._index = None
