"""``python -m pyserini_splare.train.sae``: train an SAE for a new backbone (see :mod:`..sae_training`)."""
