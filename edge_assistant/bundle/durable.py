"""Making renames durable: after ``os.replace``/``os.rename`` the folder itself must be
fsynced, or a power cut can lose the new name even though the file's data was synced."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(folder: Path) -> None:
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
