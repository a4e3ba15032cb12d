"""Offline material for tests, benchmarks and worked examples; nothing in the pipeline imports it.

:mod:`.synth` (synthetic learned-sparse collections), :mod:`.tiny_models` (tiny random Hugging Face models)
and :mod:`.cacm_pairs` (CACM as title -> abstract training pairs).
"""
