"""The licence an encoder's checkpoint states, as recorded in vectors and index metadata, and the one-line
notice ``index``, ``search`` (and ``serve``) print when it forbids commercial use.

Encoders record it in their spec (:func:`pyserini_splare.encode.licence.checkpoint_licence`); meta.json keeps
it under ``encoder``, an index under ``vectors.encoder``, an ONNX export under ``encoder.source``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Creative Commons NonCommercial variants (CC-BY-NC-4.0, CC-BY-NC-SA-4.0 -- NAVER's SPLADE weights --,
# CC-BY-NC-ND-4.0) and licences that say so in words.
_NON_COMMERCIAL = re.compile(r"(^|[^a-z])cc-by-nc|non-?commercial", re.IGNORECASE)


def _encoder(meta: Any) -> Mapping[str, Any]:
    if hasattr(meta, "encoder"):  # a VectorsMeta
        return meta.encoder or {}
    if not isinstance(meta, Mapping):
        return {}
    if isinstance(meta.get("vectors"), Mapping):  # an index's metadata
        return meta["vectors"].get("encoder") or {}
    return meta.get("encoder") or {}


def encoder_licence(meta: Any) -> str | None:
    """The checkpoint licence recorded in vectors metadata, index metadata or an encoder spec dict."""
    enc = _encoder(meta) if not (isinstance(meta, Mapping) and "type" in meta) else meta
    for d in (enc, enc.get("source") if isinstance(enc.get("source"), Mapping) else {}):
        lic = d.get("license")
        if lic:
            return str(lic)
    return None


def is_non_commercial(licence: str | None) -> bool:
    return bool(licence) and bool(_NON_COMMERCIAL.search(str(licence)))


def licence_notice(meta: Any) -> str | None:
    """One line for non-commercial checkpoint licences (None otherwise)."""
    lic = encoder_licence(meta)
    if not is_non_commercial(lic):
        return None
    return (f"notice: the encoder's checkpoint is licensed {lic}: non-commercial use only "
            "(see its model card); vectors and indexes made with it carry that licence's terms")
