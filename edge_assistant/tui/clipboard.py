"""Copying a reply or a code block.

Textual copies through OSC 52, which the terminal may silently ignore (macOS
Terminal, some tmux setups) and nobody can detect. So every copy is also
written to a file, and the notification names it: the text is never lost.
"""

from __future__ import annotations

import re
from pathlib import Path

from .. import paths
from ..durable import write_text

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
    return write_text(target, text)
