"""A bundle's router: found through its manifest, or a RouterError saying why there is none."""

from __future__ import annotations

from pathlib import Path

from ..bundle.manifest import Manifest, safe_relpath
from ..errors import RouterError
from .router import Router


def router_from_bundle(folder: Path | None, manifest: Manifest | None, name: str) -> Router:
    """Load the router named by ``manifest`` inside ``folder`` (None, None: the embedded demo base)."""
    if manifest is None or folder is None:
        raise RouterError(f"{name} has no router: it has no modifiers to route to",
                          hint="pass --bundle with a bundle that has modifiers, or install one with "
                               "`edge-assistant pull REPO_ID`")
    if manifest.router is None:
        raise RouterError(f"bundle '{manifest.name}' has no router, so every message goes to the base",
                          hint="rebuild it with a router (`edge-assistant build`) or use --modifier NAME with ask")
    router_dir = safe_relpath(folder, manifest.router.dir, what="router.dir")
    return Router.load(router_dir, manifest.router.threshold)
