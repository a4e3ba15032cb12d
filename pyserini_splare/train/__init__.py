"""Training sparse encoders (SPLADE, SPLADE-LLM, SPLARE) with the SPLARE paper's recipe (docs/training.md).

``python -m pyserini_splare.train.data`` mines training data; ``python -m pyserini_splare.train`` trains with
sentence-transformers' ``SparseEncoderTrainer``. Importing this package imports neither torch nor
sentence-transformers.
"""
