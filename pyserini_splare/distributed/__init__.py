"""Ray as the engine for the heavy stages (encoding, reranking) past one process or one machine.

Ray is an optional extra (``pip install -e ".[ray]"``); nothing here imports it at import time. The
CLIs reach this package only through their ``--ray`` flags, with a lazy import:

* :mod:`.cluster` — connect to (or start) a Ray cluster, one-line errors for bad addresses/extras.
* :mod:`.rerank` — a reranker scorer whose pairs are spread over actors holding one model each.
* :mod:`.encode` — Ray Data reads the corpus in blocks, an actor pool encodes, parts are written by block.
"""
