"""Synthetic learned-sparse collections with topical structure, shaped like SPLARE or SPLADE output.

Real learned-sparse vectors are clustered by topic, and on vectors without that structure Seismic cannot skip
anything; the generative model and the presets (``splare-pooled``, ``splare``, ``splade``): docs/backends.md,
"Synthetic collections with topical structure".

Usage (writes a vectors directory for ``python -m pyserini_splare.index`` plus query vectors)::

    python -m pyserini_splare.testing.synth --preset splare-pooled --docs 100000 --queries 200 --out /tmp/synth100k
    # -> /tmp/synth100k/vectors/ (part-*.jsonl, meta.json), /tmp/synth100k/queries.jsonl
    python -m pyserini_splare.index --backend seismic --input /tmp/synth100k/vectors --index /tmp/synth100k/seismic
    cd /tmp/synth100k && python -m pyserini_splare.search --index seismic --topics queries.jsonl \\
        --query-vectors-quantized --output run.txt
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._argtypes import ArgumentParser, non_negative_int, positive_float, positive_int
from .._errors import cli_main, run
from .._outputs import atomic_file, check_output_dir, check_output_file

PRESETS = {
    "splare-pooled": dict(n_features=131072, doc_terms=400, query_terms=40, prefix="L"),
    "splare": dict(n_features=131072, doc_terms=457, query_terms=133, prefix="L"),
    "splade": dict(n_features=30522, doc_terms=180, query_terms=30, prefix="t"),
}


@dataclass
class SynthConfig:
    n_features: int = 131072
    doc_terms: int = 400
    query_terms: int = 40
    prefix: str = "L"
    n_topics: int = 0  # 0: about sqrt(n_docs) * 3, between 50 and 3000
    topic_features: int = 0  # 0: 5 x doc_terms, at most n_features / 4
    zipf: float = 1.0
    active_features: int = 0  # 0: all; else only a random subset this large is ever used (small, fast tests)
    noise: float = 0.2
    query_noise: float = 0.05
    seed: int = 0


class Generator:
    """Draws documents and queries from the topic model above (deterministic given ``seed``)."""

    def __init__(self, cfg: SynthConfig, n_docs: int):
        if cfg.doc_terms <= 0 or cfg.query_terms <= 0 or cfg.n_features <= 0:
            raise ValueError("n_features, doc_terms and query_terms must be positive")
        if not 0 <= cfg.noise < 1 or not 0 <= cfg.query_noise < 1:
            raise ValueError("noise and query_noise must be in [0, 1)")
        self.cfg = cfg
        self.rng = np.random.default_rng(cfg.seed)
        F = cfg.n_features
        self.n_topics = cfg.n_topics or int(min(3000, max(50, 3 * np.sqrt(max(n_docs, 1)))))
        self.topic_size = cfg.topic_features or int(min(F // 4, 5 * cfg.doc_terms))
        active = self.rng.choice(F, cfg.active_features, replace=False) if 0 < cfg.active_features < F else np.arange(F)
        self.topic_size = min(self.topic_size, active.size // 2)
        # Topic feature subsets: random, each in its own random order (the Zipf ranks).
        self.topics = np.stack([active[self.rng.choice(active.size, self.topic_size, replace=False)]
                                for _ in range(self.n_topics)])
        ranks = np.arange(1, self.topic_size + 1, dtype=np.float64)
        p = ranks ** -cfg.zipf
        self.topic_p = p / p.sum()
        self.topic_cdf = np.cumsum(self.topic_p)
        # Global noise: Zipfian over a random permutation of all features.
        self.global_order = self.rng.permutation(active)
        g = np.arange(1, active.size + 1, dtype=np.float64) ** -1.1
        self.global_cdf = np.cumsum(g / g.sum())

    def _draw(self, n_terms: int, noise: float, n_mix: int, weight_boost: float):
        rng = self.rng
        topics = rng.choice(self.n_topics, n_mix, replace=False)
        mix = rng.dirichlet(np.ones(n_mix))
        n_noise = int(round(n_terms * noise))
        n_topic = n_terms - n_noise
        # Oversample with replacement then keep the first distinct draws: without replacement
        # from a Zipfian, cheaply. Salience of a feature = its mixture probability.
        draws_f, draws_s = [], []
        for t, m in zip(topics, mix):
            r = np.searchsorted(self.topic_cdf, rng.random(int(n_topic * m * 3) + 8))
            r = np.minimum(r, self.topic_size - 1)
            draws_f.append(self.topics[t, r])
            draws_s.append(m * self.topic_p[r])
        f_all = np.concatenate(draws_f)
        # interleave the topics' draws so truncation keeps each topic's share
        perm = rng.permutation(f_all.size)
        f_all, s_all = f_all[perm], np.concatenate(draws_s)[perm]
        uniq, first, inv = np.unique(f_all, return_index=True, return_inverse=True)
        sal = np.zeros(uniq.size)
        np.add.at(sal, inv, s_all)
        keep = np.sort(np.argsort(first)[:n_topic])  # the first n_topic distinct features drawn
        ids = uniq[keep].astype(np.int64)
        s = sal[keep] * self.topic_size
        w = 0.5 + 0.6 * np.log1p(s) * weight_boost
        if n_noise:
            nd = np.searchsorted(self.global_cdf, rng.random(n_noise * 2))
            nd = self.global_order[np.minimum(nd, self.global_order.size - 1)]
            nd = np.setdiff1d(np.unique(nd), ids)[:n_noise]
            ids = np.concatenate([ids, nd])
            w = np.concatenate([w, 0.15 + 0.3 * rng.random(nd.size)])
        w = w * rng.lognormal(0.0, 0.35, w.size)
        w = np.clip(w, 0.01, 5.0).astype(np.float32)
        order = np.argsort(ids)
        return ids[order], w[order]

    def doc(self):
        n = max(8, int(self.rng.poisson(self.cfg.doc_terms)))
        return self._draw(n, self.cfg.noise, int(self.rng.integers(1, 4)), 1.0)

    def query(self):
        n = max(3, int(self.rng.poisson(self.cfg.query_terms)))
        return self._draw(n, self.cfg.query_noise, int(self.rng.integers(1, 3)), 1.5)


def generate(cfg: SynthConfig, n_docs: int, n_queries: int):
    """Float vectors: ``(docs, queries)`` as lists of ``(ids, weights)``; documents first, then queries."""
    g = Generator(cfg, n_docs)
    docs = [g.doc() for _ in range(n_docs)]
    queries = [g.query() for _ in range(n_queries)]
    return docs, queries


def stream(cfg: SynthConfig, n_docs: int, n_queries: int):
    """Like :func:`generate` (same vectors for the same seed), as lazy iterators, so that a collection
    of millions of documents is written without being held in memory. Consume ``docs`` before
    ``queries``: both draw from one random stream in that order."""
    g = Generator(cfg, n_docs)
    return (g.doc() for _ in range(n_docs)), (g.query() for _ in range(n_queries))


def to_csr(vectors, n_features: int):
    """Stack ``(ids, weights)`` pairs into a float32 scipy CSR matrix (rows = vectors)."""
    import scipy.sparse as sp

    indptr = np.zeros(len(vectors) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([ids.size for ids, _ in vectors])
    indices = np.concatenate([ids for ids, _ in vectors])
    data = np.concatenate([w for _, w in vectors]).astype(np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(len(vectors), n_features))


def docid(i: int) -> str:
    return f"doc{i:07d}"


def write_collection(docs, queries, cfg: SynthConfig, out: str | Path, quant_scale: float = 100.0,
                     overwrite: bool = False) -> tuple[Path, Path]:
    """Write ``OUT/vectors`` (a vectors directory) and ``OUT/queries.jsonl`` (integer weights, same scale)."""
    from pyserini_splare.vectors import PrefixedSpace, SparseVector, VectorsWriter, quantize

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    space = PrefixedSpace(cfg.prefix, cfg.n_features, name=f"synthetic-{cfg.prefix}{cfg.n_features}")
    vdir = out / "vectors"
    with VectorsWriter(vdir, space, quant_scale, encoder={"name": "synthetic", "config": cfg.__dict__},
                      pooling={"doc_terms": cfg.doc_terms, "query_terms": cfg.query_terms},
                      overwrite=overwrite) as w:
        for i, (ids, wts) in enumerate(docs):
            w.write(docid(i), SparseVector(ids, wts))
    qpath = out / "queries.jsonl"
    with atomic_file(qpath) as f:
        for i, (ids, wts) in enumerate(queries):
            q = quantize(wts, quant_scale)
            vec = {space.term(int(t)): int(v) for t, v in zip(ids, q) if v > 0}
            f.write(json.dumps({"id": f"q{i}", "vector": vec}) + "\n")
    return vdir, qpath


@cli_main
def main(argv=None) -> int:
    p = ArgumentParser(prog="python -m pyserini_splare.testing.synth",
                       description="Write a synthetic topic-structured learned-sparse collection.",
                       epilog="examples:" + __doc__.split("Usage")[1].split("::", 1)[1])
    p.add_argument("--preset", choices=list(PRESETS), default="splare-pooled",
                   help="shape: features, document and query terms (table in the module docstring)")
    p.add_argument("--docs", type=positive_int, default=10000, help="number of documents (default 10000)")
    p.add_argument("--queries", type=non_negative_int, default=100, help="number of queries (default 100)")
    p.add_argument("--quant-scale", type=positive_float, default=100.0, help="integer weight = round(scale x weight)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="folder to write vectors/ and queries.jsonl into")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT/vectors and OUT/queries.jsonl")
    a = p.parse_args(argv)
    out = check_output_dir(a.out, overwrite=True, what="--out")  # a file there, or no writable parent
    if out.is_dir():
        check_output_dir(out / "vectors", overwrite=a.overwrite)
        check_output_file(out / "queries.jsonl", overwrite=a.overwrite)
    cfg = SynthConfig(**PRESETS[a.preset], seed=a.seed)
    # streamed (same vectors as generate()): 1M documents would hold ~5 GB of arrays in memory
    vdir, qpath = write_collection(*stream(cfg, a.docs, a.queries), cfg, a.out, a.quant_scale, a.overwrite)
    print(f"wrote {a.docs} documents to {vdir} and {a.queries} queries to {qpath}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run(main)
