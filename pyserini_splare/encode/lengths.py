"""Per-side max lengths and the shared loader options, without torch (the torch-free encoders use them too:
OpenSearch's inference-free queries, ONNX encoders)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._errors import UsageError


def lengths(defaults: tuple[int, int], max_length_query: int | None, max_length_doc: int | None,
            limit: int | None = None) -> tuple[int, int, dict[str, int]]:
    """(query, doc, overrides): the model's own lengths unless a side is given explicitly; ``limit``
    (e.g. BERT's 512 positions) clamps both."""
    q, d = defaults
    over = {}
    for name, val in (("max_length_query", max_length_query), ("max_length_doc", max_length_doc)):
        if val is not None:
            if int(val) < 2:
                raise UsageError(f"{name.replace('_', ' ')} must be >= 2, got {val}")
            over[name] = int(val)
    q, d = over.get("max_length_query", q), over.get("max_length_doc", d)
    if limit:
        q, d = min(q, limit), min(d, limit)
    return q, d, over


def reject_unknown(options: Mapping[str, Any], kind: str) -> None:
    """Factories take a shared option set and ignore the ones that do not apply to them (``task`` is
    Qwen3-Embedding's), but a length given under the old single name would be silently dropped: refuse it."""
    if "max_length" in options:
        raise TypeError(f"{kind} loaders take max_length_query / max_length_doc (load_encoder accepts max_length)")
