"""A bundle's router, found through its manifest; where there is none, every message goes to the base."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..bundle.manifest import Manifest, safe_relpath
from .decision import RouteDecision
from .router import Router


@dataclass(frozen=True)
class BaseOnly:
    """Stands in for a router where a bundle has none: the base answers, and the reason says why."""

    reason: str

    def route(self, prompt: str, *, previous: str | None = None) -> RouteDecision:
        return RouteDecision(None, 1.0, self.reason, 0.0)


def router_for_bundle(folder: Path | None, manifest: Manifest | None, name: str) -> Router | BaseOnly:
    """The router of ``manifest`` inside ``folder``, or BaseOnly (None, None: the embedded demo base)."""
    if manifest is None or folder is None:
        return BaseOnly(f"{name} has no modifiers: the base answers")
    if manifest.router is None:
        what = "no router" if manifest.modifiers else "no modifiers"
        return BaseOnly(f"bundle '{manifest.name}' has {what}: the base answers")
    return Router.load(safe_relpath(folder, manifest.router.dir, what="router.dir"), manifest.router.threshold)
