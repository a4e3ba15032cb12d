"""The JSON config files of the LLM-trunk kinds (``splare_config.json``, ``splade_llm_config.json``).

Each is a pydantic dataclass (``extra="forbid"``) whose fields are the JSON keys and whose descriptions are
the documentation (docs/splare-checkpoint.md); reading refuses unknown keys in one line, writing is atomic.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, fields
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field
from pydantic.dataclasses import dataclass

from .._errors import UsageError
from .._schemas import STRICT, validated
from .batching import DTYPES
from .modules.names import ATTENTION_MODES


def _dtype(value: str) -> str:
    if str(value).lower() not in DTYPES:
        raise ValueError(f"must be one of {sorted(DTYPES)}, got {value!r}")
    return value


# The trunk settings the LLM-trunk kinds share, each declared once with its description (the docs' table).
# strict lengths: a JSON true or "512" is not a length.
Attention = Annotated[Literal.__getitem__(ATTENTION_MODES), Field(
    description=f"one of {ATTENTION_MODES}: causal (what an untouched LLM expects) or bidirectional")]
QueryLength = Annotated[int, Field(gt=0, strict=True, description="query truncation (tokens)")]
DocLength = Annotated[int, Field(gt=0, strict=True, description="document truncation (tokens)")]
Dtype = Annotated[str, AfterValidator(_dtype), Field(description=f"trunk dtype on GPU; one of {sorted(DTYPES)}")]


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
        from .._outputs import atomic_file

        path = os.path.join(directory, self.FILE)
        with atomic_file(path) as f:
            json.dump(self.to_json(), f, indent=2)
            f.write("\n")
        return path


@dataclass(config=STRICT, kw_only=True)
class TrunkCheckpointConfig(CheckpointConfig):
    """The settings of an LLM-trunk kind's config that every such kind has (keyword-only: each kind's own
    fields come first in its constructor)."""

    attention: Attention = "causal"
    max_length_query: QueryLength = 512
    max_length_doc: DocLength = 1024
    dtype: Dtype = "bfloat16"

    def to_json(self) -> dict[str, Any]:
        """The kind's own keys first, then the shared trunk settings, ``format`` last (as a reader expects)."""
        d = asdict(self)
        shared = [f.name for f in fields(TrunkCheckpointConfig)]
        own = [k for k in d if k not in shared and k != "format"]
        return {k: d[k] for k in [*own, *shared, "format"] if k in d}
