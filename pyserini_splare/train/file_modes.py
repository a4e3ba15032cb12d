"""Training outputs get the permissions of the user's umask, like every other output (docs/errors.md, rule 5).

safetensors (0.8) creates its files with mode 0600 whatever the umask, and the trainers write through it (the
model, a LoRA adapter, an SAE, checkpoints' tensors); ``_outputs.atomic_file`` does the same correction for the
files it writes itself.
"""

from __future__ import annotations

import os
from pathlib import Path

from .._outputs import _umask


def share_like_open(root: str | os.PathLike) -> None:
    """Set every file under ``root`` to 0666 and every folder (``root`` too) to 0777, less the umask: what
    ``open`` and ``mkdir`` would have given them."""
    mask = _umask()
    root = Path(root)
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask)
