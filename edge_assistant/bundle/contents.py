"""The files a manifest promises, and a byte-exact check of a folder against them.

``pull`` and ``push`` move bundles between machines; the only thing they may
trust is manifest.json. Every other file is named in it with a sha256 (the
router's files through ``router.files``), so a copy is checked byte for byte,
not just by size as a hub client does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..hashing import sha256_file
from .manifest import MANIFEST_NAME, Manifest, safe_relpath


@dataclass(frozen=True)
class PromisedFile:
    """One file of a bundle as its manifest describes it."""

    path: str             # relative, POSIX separators
    sha256: str
    size: int | None      # None where the manifest records no size (router files)


@dataclass(frozen=True)
class FileProblem:
    path: str
    reason: str           # "missing", "size" or "sha256"
    detail: str


def promised_files(manifest: Manifest) -> list[PromisedFile]:
    """Every file besides manifest.json that the bundle must hold, base first (unless it is external)."""
    base = manifest.base
    files = [] if base.is_external else [PromisedFile(base.file, base.packed_sha256, base.packed_size)]
    files += [PromisedFile(m.file, m.sha256, m.size) for m in manifest.modifiers]
    if manifest.router is not None:
        root = manifest.router.dir.rstrip("/")
        files += [PromisedFile(f"{root}/{rel}", sha, None) for rel, sha in sorted(manifest.router.files.items())]
    return files


def check_file(bundle_dir: Path, promised: PromisedFile,
               progress: Callable[[int], None] | None = None) -> FileProblem | None:
    """None when the file on disk is exactly the promised one, else what is wrong with it."""
    path = safe_relpath(bundle_dir, promised.path, what=promised.path)
    if not path.is_file():
        return FileProblem(promised.path, "missing", "the file is missing")
    size = path.stat().st_size
    if promised.size is not None and size != promised.size:
        return FileProblem(promised.path, "size", f"{size} bytes instead of {promised.size}")
    actual = sha256_file(path, progress)
    if actual != promised.sha256:
        return FileProblem(promised.path, "sha256",
                           f"sha256 {actual[:12]}… instead of {promised.sha256[:12]}…")
    return None


def check_files(bundle_dir: Path, manifest: Manifest) -> list[FileProblem]:
    """Problems with every promised file; an empty list means the bundle is complete and intact."""
    return [p for f in promised_files(manifest) if (p := check_file(bundle_dir, f)) is not None]


def shipped_names(manifest: Manifest, bundle_dir: Path) -> list[str]:
    """What to upload: the promised files, REPORT.md when present, and manifest.json last."""
    names = [f.path for f in promised_files(manifest)]
    if (bundle_dir / "REPORT.md").is_file():
        names.append("REPORT.md")
    return [*names, MANIFEST_NAME]
