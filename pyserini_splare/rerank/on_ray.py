"""Reranking on Ray: one Qwen3-Reranker loaded per actor, each query's pairs spread over the actors.

Only the single-process loop's ``scorer(query, texts)`` is replaced: a query's length-sorted batches are dealt
round-robin to the actors (docs/distributed.md, "Reranking on Ray"). Pairs rather than whole queries, because
the driver resumes per finished query and one query at the paper's depth already has enough batches for 8 GPUs.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator, Sequence

from ..distributed.cluster import actor_result, check_workers, connect, require_resources


class _RerankWorker:
    """The actor: one reranker, loaded once."""

    def __init__(self, reranker_kwargs: dict[str, Any]):
        from .._errors import UsageError
        from .qwen3 import Qwen3Reranker

        try:
            self.reranker = Qwen3Reranker(**reranker_kwargs)
        except ValueError as e:  # the single-process CLI's translation, done where the error happens
            raise UsageError(str(e)) from None

    def score(self, query: str, documents: Sequence[str], batch_size: int) -> list[float]:
        return self.reranker.score(query, documents, batch_size=batch_size)

    def spec(self) -> dict[str, Any]:
        return self.reranker.spec

    def pid(self) -> int:
        import os

        return os.getpid()


def deal_batches(lengths: Sequence[int], batch_size: int, workers: int) -> list[list[int]]:
    """Indices per worker: longest-first batches of ``batch_size`` (the one batching helper), dealt round-robin."""
    from ..encode.batching import length_sorted_batches

    shares: list[list[int]] = [[] for _ in range(workers)]
    for b, batch in enumerate(length_sorted_batches(lengths, batch_size) if len(lengths) else []):
        shares[b % workers].extend(batch)
    return shares


class RayReranker:
    """Qwen3Reranker's ``spec`` and ``score(query, texts, batch_size)``, backed by ``workers`` Ray actors.

    ``gpus_per_worker`` > 0 puts each actor on its own GPU(s) (Ray sets CUDA_VISIBLE_DEVICES, so the
    actor's device is ``cuda``); otherwise the actors run on ``reranker_kwargs["device"]``.
    """

    def __init__(self, ray, reranker_kwargs: dict[str, Any], *, workers: int, gpus_per_worker: float = 0.0,
                 cpus_per_worker: float = 1.0):
        check_workers(workers, gpus_per_worker, cpus_per_worker)
        require_resources(ray, workers, cpus_per_worker, gpus_per_worker)
        kwargs = dict(reranker_kwargs)
        if gpus_per_worker > 0:
            kwargs["device"] = "cuda"
        self.ray = ray
        actor = ray.remote(num_cpus=cpus_per_worker, num_gpus=gpus_per_worker, max_restarts=-1,
                           max_task_retries=-1)(_RerankWorker)
        self.actors = [actor.remote(kwargs) for _ in range(workers)]
        # Load every model now (in parallel) so a bad model path fails before any query is scored.
        self.spec = actor_result(ray, [a.spec.remote() for a in self.actors])[0]

    def score(self, query: str, documents: Sequence[str], batch_size: int = 8) -> list[float]:
        shares = deal_batches([len(d) for d in documents], batch_size, len(self.actors))
        calls = [(idx, a.score.remote(query, [documents[i] for i in idx], batch_size))
                 for a, idx in zip(self.actors, shares) if idx]
        scores = [0.0] * len(documents)
        for idx, ref in calls:
            for i, s in zip(idx, actor_result(self.ray, ref)):
                scores[i] = s
        return scores

    def pids(self) -> list[int]:
        return self.ray.get([a.pid.remote() for a in self.actors])

    def close(self) -> None:
        for a in self.actors:
            self.ray.kill(a)
        self.actors = []


@contextlib.contextmanager
def ray_reranker(address: str, model: str, *, workers: int, gpus_per_worker: float = 0.0,
                 cpus_per_worker: float = 1.0, **reranker_kwargs) -> Iterator[RayReranker]:
    """The ``rerank --ray`` entry: connect (or start a local cluster), load ``workers`` rerankers."""
    check_workers(workers, gpus_per_worker, cpus_per_worker)
    with connect(address, num_cpus=max(1, math.ceil(workers * cpus_per_worker))) as ray:
        r = RayReranker(ray, {"model": model, **reranker_kwargs}, workers=workers,
                        gpus_per_worker=gpus_per_worker, cpus_per_worker=cpus_per_worker)
        try:
            yield r
        finally:
            r.close()
