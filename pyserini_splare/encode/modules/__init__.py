"""The steps an encoder is composed of: trunk -> head -> pooling -> pruning (docs/encoders.md).

Each step is a ``torch.nn.Module`` with its own config keys and, where it holds weights, ``save``/``load``.
These modules import torch at import time: they are only imported when a model is loaded.
"""
