"""Durable writes: a file or folder appears under its final name complete and synced, or not at all.

Every writer works on a temp sibling (same folder, so the final rename is atomic),
fsyncs it, renames it over the final name and fsyncs the folder that holds the
name (without that a power cut can lose the rename even though the data was
synced). A failure removes the temp and leaves whatever was there before.

Temp siblings are hidden and named ``.<final name>.<random>.tmp``; ``temp_glob``
gives the pattern, for a caller that cleans up after a killed process.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMP_SUFFIX = ".tmp"


def temp_glob(final: Path) -> str:
    """The glob pattern (relative to ``final``'s folder) matching the temp siblings of ``final``."""
    return f".{Path(final).name}.*{TEMP_SUFFIX}"


def fsync_dir(folder: Path) -> None:
    """Make the names in ``folder`` durable (after a rename, a create or a delete in it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # not every platform can open a folder (Windows); the files themselves were fsynced
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a folder; nothing more can be done there
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """fsync every file and folder under ``folder`` (symlinks are not followed), the folder last."""
    for root, dirs, files in os.walk(folder, topdown=False):
        for name in files:
            path = os.path.join(root, name)
            if os.path.islink(path):
                continue
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        for name in dirs:
            if not os.path.islink(os.path.join(root, name)):
                fsync_dir(Path(root, name))
    fsync_dir(Path(folder))


def _usual_mode(path: Path) -> None:
    """mkstemp/mkdtemp make the temp owner-only; the result gets the usual mode for new files."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)


@contextmanager
def atomic_file(final: Path) -> Iterator[Path]:
    """Yield a temp path next to ``final`` for a writer that streams (opens it by name);
    when the block ends, fsync it and rename it over ``final``. On an error the temp goes."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=TEMP_SUFFIX, dir=final.parent)
    os.close(fd)
    temp = Path(name)
    try:
        _usual_mode(temp)
        yield temp
        with open(temp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, final)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(final.parent)


def write_bytes(final: Path, data: bytes) -> Path:
    """Write ``data`` to ``final`` durably (see ``atomic_file``); returns ``final``."""
    with atomic_file(final) as temp:
        temp.write_bytes(data)
    return Path(final)


def write_text(final: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``final`` durably (see ``atomic_file``); returns ``final``."""
    return write_bytes(final, text.encode("utf-8"))


def move_file(complete: Path, final: Path) -> Path:
    """Rename a complete, already fsynced file (in the same filesystem) over ``final``."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(complete, final)
    fsync_dir(final.parent)
    return final


def swap_folder(new: Path, final: Path) -> None:
    """Put the folder ``new`` under the name ``final``, replacing a folder already there.

    The old folder is renamed aside first, then ``new`` is renamed in, then the old one
    is removed; if renaming ``new`` in fails the old one is renamed back, so a failure
    never leaves neither folder under ``final``. ``new`` must be in the same filesystem.
    """
    new, final = Path(new), Path(final)
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.old")
        os.rename(final, old)
    try:
        os.rename(new, final)
    except BaseException:
        if old is not None:
            os.rename(old, final)
        raise
    fsync_dir(final.parent)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


@contextmanager
def atomic_folder(final: Path) -> Iterator[Path]:
    """Yield a temp folder next to ``final`` to fill; when the block ends, fsync everything in it
    and swap it in whole (``swap_folder``). On an error the temp folder goes and any previous
    ``final`` stays as it was."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=TEMP_SUFFIX, dir=final.parent))
    try:
        _usual_mode(temp)
        yield temp
        fsync_tree(temp)
        swap_folder(temp, final)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
