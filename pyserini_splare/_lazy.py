"""Lazy registries: a ``"module:attr"`` string names an implementation without importing it.

The stages' tables (encoder kinds, builders, searchers) name their implementations so, and importing a table
or running ``--help`` imports no torch, starts no JVM and loads no faiss. Bottom layer: every stage may use it.
"""

from __future__ import annotations

import importlib

from ._errors import UsageError


def load_callable(spec: str):
    """Import ``"package.module:attr"`` and return the attribute; a missing module is a UsageError."""
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"not a 'module:attr' spec: {spec!r}")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("pyserini_splare"):
            raise UsageError(f"{module} is not available in this version of pyserini_splare") from None
        raise UsageError(f"{module} needs the package {e.name!r}: pip install it") from None
    try:
        return getattr(mod, name)
    except AttributeError:
        raise UsageError(f"{module} has no {name!r}") from None
