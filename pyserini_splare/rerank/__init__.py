"""Pointwise reranking with Qwen3-Reranker (RUN3/RUN4 of the SPLARE WSDM Cup 2026 system).

``python -m pyserini_splare.rerank --run RUN --topics NAME --corpus C --model M --output OUT`` (see
``--help``). torch and transformers are imported only when a model is loaded.
"""

from .qwen3 import DEFAULT_INSTRUCTION, PREFIX, SUFFIX, SYSTEM_PROMPT, Qwen3Reranker, format_prompt, user_head
from .rerank_run import merge, rerank_run

__all__ = ["DEFAULT_INSTRUCTION", "PREFIX", "SUFFIX", "SYSTEM_PROMPT", "Qwen3Reranker", "format_prompt",
           "user_head", "merge", "rerank_run"]
