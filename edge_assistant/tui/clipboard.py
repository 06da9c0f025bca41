"""Copying a reply or a code block.

Textual copies through OSC 52, which the terminal may silently ignore (macOS
Terminal, some tmux setups) and nobody can detect. So every copy is also
written to a file, and the notification names it: the text is never lost.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from .. import paths

# A fenced block: an opening fence of 3+ backticks or tildes, then the body up to
# the same fence (or the end of the text, for a reply that was stopped mid-block).
_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})[^\n]*\n(?P<body>.*?)(?:^(?P=fence)[ \t]*$|\Z)",
                    re.MULTILINE | re.DOTALL)


def code_blocks(markdown: str) -> list[str]:
    return [m.group("body").rstrip("\n") for m in _FENCE.finditer(markdown)]


def fallback_file() -> Path:
    return paths.data_dir() / "clipboard.txt"


def save_copy(text: str) -> Path:
    """Write ``text`` to the fallback file (atomically); returns its path."""
    target = fallback_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".clipboard.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
