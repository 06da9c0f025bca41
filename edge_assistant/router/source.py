"""Which router to use: the one in the resolved bundle (same order as `ask` and `chat`)."""

from __future__ import annotations

from ..bundle.manifest import safe_relpath
from ..errors import RouterError
from ..settings import Settings
from .router import Router


def router_for_bundle(bundle: str | None, settings: Settings) -> tuple[Router, str]:
    """The resolved bundle's router and the bundle's name, or a RouterError saying why there is none."""
    from ..runtime.factory import resolve_bundle

    resolved = resolve_bundle(bundle, settings)
    if resolved.manifest is None or resolved.path is None:
        raise RouterError(f"{resolved.name} has no router: it has no modifiers to route to",
                          hint="pass --bundle with a bundle that has modifiers, or install one with "
                               "`edge-assistant pull REPO_ID`")
    manifest = resolved.manifest
    if manifest.router is None:
        raise RouterError(f"bundle '{manifest.name}' has no router, so every message goes to the base",
                          hint="rebuild it with a router (`edge-assistant build`) or use --modifier NAME with ask")
    folder = safe_relpath(resolved.path, manifest.router.dir, what="router.dir")
    return Router.load(folder, manifest.router.threshold), manifest.name
