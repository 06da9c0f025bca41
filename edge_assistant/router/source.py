"""A bundle's router, found through its manifest; where there is none, every message goes to the base."""

from __future__ import annotations

from pathlib import Path

from ..bundle.manifest import Manifest, safe_relpath
from .decision import BaseOnly
from .router import Router

__all__ = ["BaseOnly", "router_for_bundle"]


def router_for_bundle(folder: Path | None, manifest: Manifest | None, name: str) -> Router | BaseOnly:
    """The router of ``manifest`` inside ``folder``, or BaseOnly (None, None: the embedded demo base)."""
    if manifest is None or folder is None:
        return BaseOnly(f"{name} has no modifiers: the base answers")
    if manifest.router is None:
        what = "no router" if manifest.modifiers else "no modifiers"
        return BaseOnly(f"bundle '{manifest.name}' has {what}: the base answers")
    return Router.load(safe_relpath(folder, manifest.router.dir, what="router.dir"), manifest.router.threshold)
