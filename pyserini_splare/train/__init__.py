"""Training sparse encoders (SPLADE, SPLADE-LLM, SPLARE) with the SPLARE paper's recipe.

* ``python -m pyserini_splare.train.data`` mines training data (FlagEmbedding JSONL,
  :mod:`.data_format`) with this toolkit's own indexes and reranker (:mod:`.mining`);
* ``python -m pyserini_splare.train`` trains an encoder on it with sentence-transformers'
  ``SparseEncoderTrainer`` (:mod:`.engine`), the losses of :mod:`.losses` and a recipe of
  :mod:`.recipes`, and writes a checkpoint directory that ``encode --encoder KIND:DIR`` loads.

See docs/training.md. Importing this package imports neither torch nor sentence-transformers.
"""
