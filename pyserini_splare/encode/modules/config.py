"""Module persistence, as sentence-transformers' ``Module`` does it: ``config_keys`` + save/load of the config.

:meth:`ConfigModule.config` feeds meta.json's ``pooling`` and the kinds' checkpoint files;
:meth:`ConfigModule.load_config` refuses unknown keys and names the file in one line. Weights are saved by
the module that owns them, not here.
"""

from __future__ import annotations

import json
import os
from typing import Any, ClassVar

from ..._errors import UsageError


class ConfigModule:
    """Mixin: ``config_keys`` (attributes = constructor arguments) and a ``config_file`` name."""

    config_keys: ClassVar[tuple[str, ...]] = ()
    config_file: ClassVar[str | None] = None  # a module saved on its own writes this file

    def config(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.config_keys}

    def save_config(self, directory: str | os.PathLike) -> str:
        """Write :meth:`config` to ``directory/config_file`` (atomically)."""
        from ..._outputs import atomic_file

        path = os.path.join(os.fspath(directory), self._file())
        with atomic_file(path) as f:
            json.dump(self.config(), f, indent=2)
            f.write("\n")
        return path

    @classmethod
    def _file(cls) -> str:
        if not cls.config_file:
            raise TypeError(f"{cls.__name__} is saved inside its kind's checkpoint file, not on its own")
        return cls.config_file

    @classmethod
    def has_config(cls, directory: str | os.PathLike | None) -> bool:
        return bool(directory) and os.path.isfile(os.path.join(os.fspath(directory), cls._file()))

    @classmethod
    def load_config(cls, directory: str | os.PathLike) -> dict[str, Any]:
        """The saved config: a dict of ``config_keys`` only (UsageError naming the file otherwise)."""
        path = os.path.join(os.fspath(directory), cls._file())
        try:
            with open(path, encoding="utf-8") as f:
                cfg = json.load(f)
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UsageError(f"cannot read {path}: {e}") from None
        if not isinstance(cfg, dict):
            raise UsageError(f"{path}: expected a JSON object")
        unknown = sorted(set(cfg) - set(cls.config_keys))
        if unknown:
            raise UsageError(f"{path}: unknown keys {unknown} (known: {sorted(cls.config_keys)})")
        return cfg

    @classmethod
    def from_config(cls, config: dict[str, Any], where: str = "config"):
        """The module built from a config; the constructor's ValueError becomes one line naming ``where``."""
        try:
            return cls(**config)
        except (TypeError, ValueError) as e:
            raise UsageError(f"{where}: {e}") from None

    @classmethod
    def load(cls, directory: str | os.PathLike):
        """``from_config(load_config(directory))``."""
        return cls.from_config(cls.load_config(directory), os.path.join(os.fspath(directory), cls._file()))
