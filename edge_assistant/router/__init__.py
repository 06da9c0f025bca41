"""Router: picks the modifier (or the base) for each message, and says why."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .router import Router


def load_router(router_dir: str | Path, threshold: float | None = None) -> "Router":
    """Load a bundle's router folder (numpy and tokenizers only); ``threshold`` overrides the fitted one."""
    from .router import Router

    return Router.load(router_dir, threshold)
