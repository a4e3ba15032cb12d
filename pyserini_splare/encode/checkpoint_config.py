"""The JSON config files of checkpoint directories: an LLM-trunk kind's own (``splare_config.json``,
``splade_llm_config.json``), and ``pruning.json`` (:class:`PruningConfig`, any kind: the pruning a
model applies after pooling, e.g. Top-K learned in training). One dataclass per file, read and written
here the same way.

A config is a dataclass whose field names are the JSON keys. Reading refuses unknown keys (a typo
would otherwise fall back to a default silently) and turns a bad value into one line naming the file;
writing is atomic. The trunk settings both kinds share (attention mode, dtype, per-side lengths) are
checked by :meth:`CheckpointConfig.check_trunk_settings`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from .._errors import UsageError
from .batching import DTYPES
from .modules.pruning import MODES as PRUNING_MODES
from .modules.pruning import Pruning
from .modules.trunk import ATTENTION_MODES


class CheckpointConfig:
    """Mixin for a checkpoint config dataclass; subclasses set ``FILE`` and ``KIND``."""

    FILE: ClassVar[str]
    KIND: ClassVar[str]

    def check_trunk_settings(self) -> None:
        """ValueError unless attention, dtype and both max lengths are valid."""
        if self.attention not in ATTENTION_MODES:
            raise ValueError(f"attention must be one of {ATTENTION_MODES}, got {self.attention!r}")
        if str(self.dtype).lower() not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")
        for name in ("max_length_query", "max_length_doc"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any], where: str | None = None):
        where = where or cls.FILE
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise UsageError(f"{where}: unknown keys {unknown} (known: {sorted(known)})")
        try:
            return cls(**obj)
        except (TypeError, ValueError) as e:
            raise UsageError(f"{where}: {e}") from None

    @classmethod
    def read(cls, directory: str):
        path = os.path.join(directory, cls.FILE)
        try:
            with open(path, encoding="utf-8") as f:
                obj = json.load(f)
        except FileNotFoundError:
            raise UsageError(f"{directory!r} is not a {cls.KIND} checkpoint: no {cls.FILE}") from None
        except (OSError, json.JSONDecodeError) as e:
            raise UsageError(f"cannot read {path}: {e}") from None
        return cls.from_json(obj, path)

    def write(self, directory: str) -> str:
        from .._outputs import atomic_file

        path = os.path.join(directory, self.FILE)
        with atomic_file(path) as f:
            json.dump(self.to_json(), f, indent=2)
            f.write("\n")
        return path


@dataclass
class PruningConfig(CheckpointConfig):
    """``pruning.json``: the :class:`~.modules.pruning.Pruning` a model applies to its pooled vectors, written
    beside any kind's own files by ``SparseModel.save`` when the model prunes (a checkpoint trained with
    ``train --topk-query/--topk-doc``) and applied again by every loader. Absent: no pruning."""

    mode: str = "none"
    k_query: int = 0
    k_doc: int = 0
    mass: float | None = None

    FILE: ClassVar[str] = "pruning.json"
    KIND: ClassVar[str] = "pruned"

    def __post_init__(self):
        if self.mode not in PRUNING_MODES:
            raise ValueError(f"mode must be one of {PRUNING_MODES}, got {self.mode!r}")
        for name in ("k_query", "k_doc"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int):
                raise ValueError(f"{name} must be an integer, got {getattr(self, name)!r}")
        self.module()  # the module's own checks (sizes >= 0, mass in (0, 1])

    def module(self) -> Pruning:
        return Pruning(self.mode, self.k_query, self.k_doc, self.mass)
