"""``python -m pyserini_splare.train.data``: mine FlagEmbedding training JSONL (see :mod:`..mining`)."""
