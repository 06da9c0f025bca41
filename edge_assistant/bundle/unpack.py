"""Unpack a bundle's base once into the user cache: ``<cache>/bases/<sha256>.gguf``.

The contract (shared/DESIGN.md): a present file of the right size is reused; a
file lock makes two first runs unpack once (the second waits, then reuses); free
space is checked before writing; the stream is decompressed and hashed as it
goes, never past the manifest's size, into a temp file in the same folder that
is fsynced and renamed into place. On any failure the temp file is removed and
nothing exists under the final name; a temp file left by a killed process is
removed by the next run (it holds the lock, so no live writer owns it).

A right size is not enough to trust a copy that sits in the cache for months: a
stamp next to it (``<sha256>.gguf.stamp``) records the size, mtime and inode it
had when its sha256 was last confirmed (at unpack). While they still match, the
copy is used as is; on the first use after any of them changed, it is hashed
again, and a copy that no longer matches the manifest is unpacked again with a
notice. ``bundle verify`` checks the cached copy too (see ``cached_copy_state``).
"""

from __future__ import annotations

import errno
import json
import logging
import shutil
from pathlib import Path
from typing import Callable, Literal

from filelock import FileLock, Timeout

from .. import paths
from ..document import loads_json
from ..durable import atomic_file, temp_glob, write_text
from ..errors import BundleError, DiskSpaceError, IntegrityError
from ..hashing import sha256_file
from ..progress import ProgressCallback
from .manifest import Manifest, safe_relpath
from .stream import decompress_bounded

log = logging.getLogger(__name__)

# Room left on the disk after unpacking, for the OS and llama.cpp's own files.
FREE_SPACE_MARGIN = 64 << 20


def cached_base_path(manifest: Manifest, cache_dir: Path | None = None) -> Path:
    """Where the unpacked base of ``manifest`` lives (whether or not it is there yet)."""
    return (cache_dir or paths.bases_cache_dir()) / f"{manifest.base.sha256}.gguf"


STAMP_SUFFIX = ".stamp"
CacheState = Literal["absent", "ok", "damaged"]


def stamp_path(final: Path) -> Path:
    return final.with_name(final.name + STAMP_SUFFIX)


def _identity(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino, "device": st.st_dev}


def _write_stamp(final: Path, sha256: str) -> None:
    """Record that ``final``, as it is now, hashed to ``sha256`` (best effort: without a stamp
    the copy is only hashed again on next use)."""
    try:
        write_text(stamp_path(final), json.dumps({"sha256": sha256, **_identity(final)}) + "\n")
    except OSError as exc:
        log.info("cannot write %s (%s): the copy will be hashed again on next use", stamp_path(final), exc)


def _stamp_matches(final: Path, sha256: str) -> bool:
    """Whether ``final`` is unchanged since its sha256 was last confirmed to be ``sha256``."""
    try:
        stamp = loads_json(stamp_path(final).read_bytes())
        return isinstance(stamp, dict) and stamp == {"sha256": sha256, **_identity(final)}
    except (OSError, ValueError):
        return False


def cached_copy_state(manifest: Manifest, cache_dir: Path | None = None, *, trust_stamp: bool = True,
                      progress: Callable[[int], None] | None = None) -> CacheState:
    """Whether the cache holds the unpacked base, and whether it is intact; read only.

    With ``trust_stamp`` an unchanged copy (per its stamp) is not hashed again.
    """
    final = cached_base_path(manifest, cache_dir)
    if not final.is_file():
        return "absent"
    if not _is_complete(final, manifest.base.size):
        return "damaged"
    if trust_stamp and _stamp_matches(final, manifest.base.sha256):
        return "ok"
    return "ok" if sha256_file(final, progress) == manifest.base.sha256 else "damaged"


def is_ready(manifest: Manifest, cache_dir: Path | None = None) -> bool:
    """Whether using the base needs no work: unpacked and unchanged since it was checked."""
    final = cached_base_path(manifest, cache_dir)
    return _is_complete(final, manifest.base.size) and _stamp_matches(final, manifest.base.sha256)


def _is_complete(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except FileNotFoundError:
        return False


def _remove_stale_temps(folder: Path, final: Path) -> None:
    # Called with the lock held: any temp for this sha belongs to a dead process.
    for stale in folder.glob(temp_glob(final)):
        log.info("removing %s left by an interrupted unpack", stale.name)
        stale.unlink(missing_ok=True)


def _check_free_space(folder: Path, needed: int, bundle_name: str) -> None:
    free = shutil.disk_usage(folder).free
    if free < needed + FREE_SPACE_MARGIN:
        raise DiskSpaceError(
            f"unpacking bundle {bundle_name!r} needs {needed / 1e6:.0f} MB free in {folder}, "
            f"only {free / 1e6:.0f} MB are",
            hint="free some disk space or set EDGE_ASSISTANT_HOME to a larger disk")


def unpack_base(bundle_dir: Path, manifest: Manifest, *, cache_dir: Path | None = None,
                progress: ProgressCallback | None = None, notify: Callable[[str], None] | None = None) -> Path:
    """Return the path of the unpacked base GGUF, unpacking it first if needed.

    ``progress`` is called with the byte count of each unpacked (or re-hashed) chunk
    (the total is ``manifest.base.size``), from a worker thread (rich's bars are
    thread-safe). ``notify`` gets one line when a damaged cached copy is replaced
    (default: a logged warning).
    """
    bundle_dir = Path(bundle_dir)
    folder = cache_dir or paths.bases_cache_dir()
    final = cached_base_path(manifest, folder)
    if is_ready(manifest, folder):
        return final
    try:
        return _unpack_locked(bundle_dir, manifest, folder, final, progress, notify or log.warning)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DiskSpaceError(f"the disk holding {folder} filled up while unpacking {manifest.name!r}",
                                 hint="free some disk space or set EDGE_ASSISTANT_HOME to a larger disk") from exc
        raise BundleError(f"cannot unpack {manifest.name!r} into {folder}: {exc.strerror or exc}",
                          hint="check that folder's permissions, or set EDGE_ASSISTANT_HOME elsewhere") from exc


def _unpack_locked(bundle_dir: Path, manifest: Manifest, folder: Path, final: Path,
                   progress: ProgressCallback | None, notify: Callable[[str], None]) -> Path:
    size = manifest.base.size
    packed = safe_relpath(bundle_dir, manifest.base.file, what="base.file")
    try:
        packed_size = packed.stat().st_size
    except FileNotFoundError:
        raise IntegrityError(f"{manifest.base.file} is missing from bundle {manifest.name!r}",
                             hint="re-download or rebuild the bundle") from None
    if packed_size != manifest.base.packed_size:
        raise IntegrityError(
            f"{packed.name} is {packed_size} bytes, the manifest says {manifest.base.packed_size}",
            hint="the bundle is incomplete or corrupt; re-download or rebuild it")
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(final) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("waiting for another process that is unpacking %s", final.name)
        lock.acquire()
    try:
        if is_ready(manifest, folder):
            log.info("reusing %s unpacked by another process", final.name)
            return final
        _remove_stale_temps(folder, final)
        if _is_complete(final, size):
            # Changed since it was checked (or unpacked by a version without stamps): hash it once.
            log.info("checking %s: it changed since its sha256 was last confirmed", final.name)
            if sha256_file(final, progress) == manifest.base.sha256:
                _write_stamp(final, manifest.base.sha256)
                return final
            notify(f"the unpacked copy of {manifest.name!r} in the cache ({final}) was damaged "
                   "(its sha256 no longer matches the bundle): unpacking it again")
            final.unlink()
        elif final.exists():
            # Wrong size: not ours to trust (a copy cut short outside our control).
            log.info("removing %s: its size is not the manifest's %d bytes", final.name, size)
            final.unlink()
        _check_free_space(folder, size, manifest.name)
        log.info("unpacking %s (%d bytes) to %s", packed, size, final)
        _unpack_to(packed, final, manifest, progress)
        _write_stamp(final, manifest.base.sha256)
        return final
    finally:
        lock.release()


def _unpack_to(packed: Path, final: Path, manifest: Manifest, progress: ProgressCallback | None) -> None:
    with atomic_file(final) as tmp, open(tmp, "wb") as sink:
        digest = decompress_bounded(packed, manifest.base.size, sink=sink, progress=progress)
        if digest != manifest.base.sha256:
            raise IntegrityError(
                f"{packed.name} unpacks to sha256 {digest[:12]}…, the manifest says {manifest.base.sha256[:12]}…",
                hint="the bundle is corrupt; run `edge-assistant bundle verify` and re-download or rebuild it")
