"""File sha256s: the one streaming hasher, and a scope (``hash_once``) in which each file is read once.

A build hashes its quantized base for every stage that takes it as an input, for
every modifier bound to it and again when it packs the bundle; ``pull`` hashes each
downloaded file and then verifies the bundle. Inside ``hash_once()`` the digest of a
file is kept with the file's identity (device, inode, size, mtime and ctime, all in
nanoseconds where the filesystem has them) and reused while that identity is
unchanged. Every write changes mtime and ctime, a rename-into-place changes the
inode, and a file that changes while it is read is not kept. A write lands on the
clock tick of the kernel's coarse clock, so a file changed less than one tick ago
could change again without a new timestamp: its hash is only kept once that tick
has passed (hashing a file just written waits for it, at most ``TICK_NS``).
Outside the scope every call reads the file, which is what a check of data at rest wants.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

CHUNK = 4 << 20   # bytes per read while hashing or copying a file

# Longer than one tick of the clock that stamps file changes (1/HZ, HZ >= 100 on Linux); a
# filesystem that keeps whole seconds only (FAT keeps two) is given two seconds.
TICK_NS = 20_000_000
WHOLE_SECONDS_TICK_NS = 2_000_000_000

Identity = tuple[int, int, int, int, int]

_lock = threading.Lock()
_scopes = 0
_known: dict[Identity, str] = {}


def _identity(path: str | Path) -> Identity:
    """What changes whenever the file's bytes may have: (device, inode, size, mtime_ns, ctime_ns)."""
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _settled(path: str | Path, identity: Identity) -> Identity | None:
    """``identity`` once the file's last change is more than one timestamp tick old, so that any
    later change gets another mtime and ctime; waits for that (at most one tick). None: do not keep."""
    changed = max(identity[3], identity[4])
    tick = WHOLE_SECONDS_TICK_NS if changed % 1_000_000_000 == 0 else TICK_NS
    wait = changed + tick - time.time_ns()
    if wait <= 0:
        return identity
    if wait > tick:
        return None   # stamped ahead of this machine's clock (a network filesystem): never kept
    time.sleep(wait / 1e9)
    return identity if _identity(path) == identity else None


def _read_digest(path: str | Path, progress: Callable[[int], None] | None) -> str:
    """Read the whole file once and return its sha256: the only place a file is read to hash it."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            if progress:
                progress(len(chunk))
    return digest.hexdigest()


def sha256_file(path: str | Path, progress: Callable[[int], None] | None = None) -> str:
    """sha256 of a file, streamed in chunks; ``progress`` gets the byte count of each chunk.

    Inside ``hash_once()`` a file hashed before and unchanged since is not read again
    (``progress`` then gets its whole size in one call).
    """
    if not _scopes:
        return _read_digest(path, progress)
    before = _identity(path)
    with _lock:
        known = _known.get(before)
    if known is not None:
        if progress:
            progress(before[2])
        return known
    before = _settled(path, before)
    digest = _read_digest(path, progress)
    if before is not None and _identity(path) == before:   # not kept if it changed while it was read
        with _lock:
            if _scopes:
                _known[before] = digest
    return digest


@contextmanager
def hash_once() -> Iterator[None]:
    """Within this block (nested blocks share it), each unchanged file is read once to hash it.

    Also a decorator: ``@hash_once()`` scopes a whole function.
    """
    global _scopes
    with _lock:
        _scopes += 1
    try:
        yield
    finally:
        with _lock:
            _scopes -= 1
            if not _scopes:
                _known.clear()
