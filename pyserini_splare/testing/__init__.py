"""Offline material for tests, benchmarks and worked examples; nothing in the pipeline imports it.

* :mod:`.synth` -- synthetic topic-structured learned-sparse collections (SPLARE/SPLADE-shaped),
  ``python -m pyserini_splare.testing.synth``;
* :mod:`.tiny_models` -- tiny random Hugging Face models with tokenizers trained on the fly
  (Qwen3 embedder and reranker, BERT MLM), so tests need no model hub;
* :mod:`.cacm_pairs` -- CACM as title -> abstract training pairs,
  ``python -m pyserini_splare.testing.cacm_pairs``.
"""
