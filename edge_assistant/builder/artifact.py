"""Write an artifact under its final name only once it is complete.

A converter or quantizer that fails half-way must never leave a truncated GGUF
where the runtime would pick it up, so every writer works on a temp file in the
destination folder (same filesystem, so the final rename is atomic), fsyncs it
and then renames it over the final name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_output(final: Path) -> Iterator[Path]:
    """Yield a temp path next to ``final``; on success fsync it and ``os.replace`` it into place."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    os.close(fd)
    temp = Path(name)
    try:
        yield temp
        with open(temp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, final)
        _fsync_dir(final.parent)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _fsync_dir(folder: Path) -> None:
    # The rename is only durable once the directory entry is on disk too.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # some filesystems do not allow opening a directory; the rename still happened
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
