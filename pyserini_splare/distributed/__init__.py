"""Ray plumbing for the heavy stages (encoding, reranking) past one process or one machine (docs/distributed.md).

Ray is an optional extra (``pip install -e ".[ray]"``) and is never imported at import time: :mod:`.cluster`
connects to (or starts) a cluster; the Ray parts of each stage live in ``encode/on_ray.py`` and ``rerank/on_ray.py``.
"""
