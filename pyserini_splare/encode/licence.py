"""The licence a model checkpoint states: its model card's front matter (``license:`` in the YAML block
that opens README.md, as the Hugging Face hub writes it) or a ``license`` key in its config.json.

Recorded by the encoders in their spec (hence in meta.json and every index built from it), and read back by
:func:`pyserini_splare.formats.licence.licence_notice`.
"""

from __future__ import annotations

import json
import os


def _front_matter(readme: str) -> dict:
    try:
        with open(readme, encoding="utf-8") as f:
            text = f.read(200_000)
    except (OSError, UnicodeDecodeError):
        return {}
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    try:
        end = next(i for i, line in enumerate(lines[1:], 1) if line.strip() == "---")
    except StopIteration:
        return {}
    import yaml

    try:
        data = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def checkpoint_licence(path: str | os.PathLike | None) -> str | None:
    """``license`` of a local checkpoint folder (model card first, then config.json); None if it states none
    or is not a local folder (a hub id is not fetched for this)."""
    if not path or not os.path.isdir(path):
        return None
    card = _front_matter(os.path.join(path, "README.md"))
    lic = card.get("license")
    if lic and str(lic).lower() == "other" and card.get("license_name"):
        lic = card["license_name"]
    if not lic:
        try:
            with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
                cfg = json.load(f)
            lic = cfg.get("license") if isinstance(cfg, dict) else None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            lic = None
    if isinstance(lic, list):
        lic = ", ".join(map(str, lic))
    return str(lic) if lic else None
