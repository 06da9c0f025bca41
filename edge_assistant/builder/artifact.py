"""Write an artifact under its final name only once it is complete.

A converter or quantizer that fails half-way must never leave a truncated GGUF
where the runtime would pick it up, so every writer works on a temp file in the
destination folder (same filesystem, so the final rename is atomic), fsyncs it
and then renames it over the final name.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..bundle.durable import fsync_dir


@contextmanager
def atomic_output(final: Path) -> Iterator[Path]:
    """Yield a temp path next to ``final``; on success fsync it and ``os.replace`` it into place."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    os.close(fd)
    temp = Path(name)
    # mkstemp makes the file private (0600); an artifact gets the usual mode for new files.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temp, 0o666 & ~umask)
    try:
        yield temp
        with open(temp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, final)
        fsync_dir(final.parent)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise



@contextmanager
def atomic_folder(final: Path) -> Iterator[Path]:
    """Yield a temp folder next to ``final``; on success it replaces ``final`` whole.

    The caller fsyncs the files it writes; a failure removes the temp folder and
    leaves any previous ``final`` as it was.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield temp
        if final.exists():
            shutil.rmtree(final)
        os.replace(temp, final)
        fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
