"""Reading SAE files: JSON configs and safetensors weights, each failure one UsageError line (shared by the
SAE format loaders in :mod:`.sae` and :mod:`.sae_llamascopium`)."""

from __future__ import annotations

import json

from ..._errors import UsageError


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise UsageError(f"cannot read {path}: {e}") from None


def _load_tensors(path: str) -> tuple[dict, dict]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="pt") as f:
            names = list(f.keys())  # a safe_open handle is not a dict: no `in`
            return {k: f.get_tensor(k) for k in names}, dict(f.metadata() or {})
    except (OSError, SafetensorError) as e:
        raise UsageError(f"cannot read SAE weights {path}: {e}") from None


def _need(tensors: dict, keys: tuple[str, ...], where: str) -> None:
    missing = [k for k in keys if k not in tensors]
    if missing:
        raise UsageError(f"SAE weights {where} lack {', '.join(missing)} (have: {', '.join(sorted(tensors))})")
