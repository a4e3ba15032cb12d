"""The JSON config files of the LLM-trunk kinds' checkpoint directories (``splare_config.json``,
``splade_llm_config.json``), declared as pydantic dataclasses and read and written here the same way.

A config is a pydantic dataclass (``extra="forbid"``) whose field names are the JSON keys and whose
field descriptions are the documentation (docs/splare-checkpoint.md). Reading refuses unknown keys (a typo
would otherwise fall back to a default silently) and turns a bad value into one line naming the file and
the field (:func:`pyserini_splare._schemas.validated`); writing is atomic. The trunk settings both kinds
share (attention mode, dtype, per-side lengths) are the annotated types below. The pruning a model applies
(``pruning.json``, any kind) is the pruning module's own config (:class:`~.modules.pruning.Pruning`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, fields
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field

from .._cli import UsageError
from .._schemas import validated
from .batching import DTYPES
from .modules.names import ATTENTION_MODES


def _dtype(value: str) -> str:
    if str(value).lower() not in DTYPES:
        raise ValueError(f"must be one of {sorted(DTYPES)}, got {value!r}")
    return value


AttentionMode = Literal.__getitem__(ATTENTION_MODES)
Dtype = Annotated[str, AfterValidator(_dtype)]
# strict: a JSON true or "512" is not a length.
Length = Annotated[int, Field(gt=0, strict=True)]


class CheckpointConfig:
    """Mixin for a checkpoint config (a pydantic dataclass); subclasses set ``FILE`` and ``KIND``."""

    FILE: ClassVar[str]
    KIND: ClassVar[str]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: Any, where: str | None = None):
        return validated(cls, obj, where or cls.FILE, known=sorted(f.name for f in fields(cls)))

    @classmethod
    def read(cls, directory: str):
        path = os.path.join(directory, cls.FILE)
        try:
            with open(path, encoding="utf-8") as f:
                obj = json.load(f)
        except FileNotFoundError:
            raise UsageError(f"{directory!r} is not a {cls.KIND} checkpoint: no {cls.FILE}") from None
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UsageError(f"cannot read {path}: {e}") from None
        return cls.from_json(obj, path)

    def write(self, directory: str) -> str:
        from .._cli import atomic_file

        path = os.path.join(directory, self.FILE)
        with atomic_file(path) as f:
            json.dump(self.to_json(), f, indent=2)
            f.write("\n")
        return path
