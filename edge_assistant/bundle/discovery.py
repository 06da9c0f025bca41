"""Find bundles: the installed ones under ``paths.bundles_dir()``, or one by name or path."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from .. import paths
from ..errors import BundleError, EdgeAssistantError
from .manifest import MANIFEST_NAME, Manifest, load_manifest

log = logging.getLogger(__name__)


@dataclass
class BundleScan:
    bundles: list[tuple[Path, Manifest]] = field(default_factory=list)  # newest first
    problems: list[str] = field(default_factory=list)                   # one line per skipped folder


def scan_installed(root: Path | None = None) -> BundleScan:
    """Every valid installed bundle, newest manifest first, and why the others were skipped."""
    root = root or paths.bundles_dir()
    scan = BundleScan()
    if not root.is_dir():
        return scan
    found: list[tuple[float, Path, Manifest]] = []
    for folder in sorted(root.iterdir()):
        if not folder.is_dir() or folder.name.startswith("."):
            continue  # hidden: a create or pull still in progress
        try:
            manifest = load_manifest(folder)
            mtime = (folder / MANIFEST_NAME).stat().st_mtime
        except (EdgeAssistantError, OSError) as exc:
            scan.problems.append(f"skipped {folder}: {exc}")
            continue
        found.append((mtime, folder, manifest))
    found.sort(key=lambda item: (item[0], item[1].name), reverse=True)
    scan.bundles = [(folder, manifest) for _, folder, manifest in found]
    return scan


def installed_bundles() -> list[tuple[Path, Manifest]]:
    """Valid installed bundles, newest first; invalid ones are skipped with a logged warning."""
    scan = scan_installed()
    for problem in scan.problems:
        log.warning("%s", problem)
    return scan.bundles


def _looks_like_path(text: str) -> bool:
    return "/" in text or "\\" in text or text.startswith((".", "~"))


def find_bundle(name_or_path: str) -> Path:
    """A bundle folder given as a path, or the folder of the installed bundle of that name."""
    candidate = Path(name_or_path).expanduser()
    if candidate.is_dir() and (candidate / MANIFEST_NAME).is_file():
        return candidate
    not_a_bundle = BundleError(f"{candidate} is not a bundle (no {MANIFEST_NAME})",
                               hint="pass a folder made by `edge-assistant bundle create` or `pull`")
    if _looks_like_path(name_or_path):
        if candidate.is_dir():
            raise not_a_bundle
        raise BundleError(f"bundle folder {candidate} does not exist",
                          hint="check the path, or run `edge-assistant bundle list` for installed bundles")
    scan = scan_installed()
    for folder, _ in scan.bundles:
        if folder.name == name_or_path:
            return folder
    for folder, manifest in scan.bundles:
        if manifest.name == name_or_path:
            return folder
    if candidate.is_dir():
        raise not_a_bundle  # a plain name that is a local folder, not an installed bundle
    names = ", ".join(sorted({f.name for f, _ in scan.bundles})) or "none"
    raise BundleError(f"no bundle named {name_or_path!r} (installed: {names})",
                      hint="pass a bundle folder path, or install one with `edge-assistant pull`")
