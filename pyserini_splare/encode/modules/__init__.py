"""The steps an encoder is composed of: trunk -> head -> pooling -> pruning (see ``encode/model.py``).

* :mod:`.trunk`: any Hugging Face encoder or decoder as a token encoder (layer cut, attention mode, LoRA);
* heads: :mod:`.vocab` (MLM / LM vocabulary head), :mod:`.sae` (frozen sparse autoencoder),
  :mod:`.milco` (MILCO's connector + MLM head + LexEcho);
* :mod:`.pooling`: tokens -> one vector (max of log1p(ReLU), computed in chunks of tokens; sum per id);
* :mod:`.pruning`: Top-K or mass pruning of the pooled vector.

Each step is a ``torch.nn.Module`` with its own config keys (``config()``) and, where it holds weights of
its own, ``save``/``load``; none wraps its computation in ``torch.no_grad``: gradients flow, and the
encode loop (``SparseModel.encode``) decides to run under ``torch.inference_mode``. These modules import
torch at import time: they are only imported when a model is loaded.
"""
