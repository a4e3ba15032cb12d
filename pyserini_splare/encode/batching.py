"""The one length-sorted batching helper and the one dtype table, for every encoder and the reranker.

:func:`length_sorted_batches` groups indices longest first (ties in input order): batches pad little, and an
out-of-memory error comes on the first batch, not after an hour. :func:`torch_dtype` maps ``bf16|fp16|fp32``
(``None``/``"auto"``: float32 on CPU, where bf16 matmuls are slow). Importing this module does not import torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# User-facing name -> torch attribute name. The CLIs offer the short names (--dtype bf16|fp16|fp32).
DTYPES = {
    "fp32": "float32", "float32": "float32",
    "bf16": "bfloat16", "bfloat16": "bfloat16",
    "fp16": "float16", "float16": "float16", "half": "float16",
}


def torch_dtype(name: Any, device: Any = "cpu", gpu_default: Any = None):
    """``"bf16"`` / ``"bfloat16"`` / ``torch.bfloat16`` -> ``torch.bfloat16``.

    ``None`` or ``"auto"``: float32 on CPU; on another device ``gpu_default`` (itself a name or dtype;
    float32 when not given). Unknown names raise ``ValueError`` naming the allowed ones.
    """
    import torch

    if isinstance(name, torch.dtype):
        return name
    if name is None or name == "auto":
        if gpu_default is None or str(device).split(":")[0] == "cpu":
            return torch.float32
        return torch_dtype(gpu_default)
    key = str(name).lower()
    if key not in DTYPES:
        raise ValueError(f"unknown dtype {name!r} (allowed: {', '.join(sorted(DTYPES))}, auto)")
    return getattr(torch, DTYPES[key])


def dtype_name(dtype) -> str:
    """``torch.bfloat16`` -> ``"bfloat16"`` (what specs and meta.json record)."""
    return str(dtype).replace("torch.", "")


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices of ``lengths`` in batches of at most ``batch_size``, longest first (stable on ties)."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
