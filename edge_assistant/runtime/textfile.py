"""Writing a text file so that readers see the old file or the new one, never half of one."""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def write_text_atomic(target: Path, text: str) -> Path:
    """Temp file in the same folder, fsync, ``os.replace``; returns ``target``.

    The temp file is opened by name (not ``mkstemp``) so the result gets the
    usual permissions from the umask rather than mkstemp's owner-only 0600.
    """
    target = Path(target)
    tmp = target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
