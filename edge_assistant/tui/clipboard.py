"""Copying a reply or a code block.

Textual copies through OSC 52, which the terminal may silently ignore (macOS
Terminal, some tmux setups) and nobody can detect. So every copy is also
written to a file, and the notification names it: the text is never lost.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from textual.app import App

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


def copy(app: App[Any], text: str, what: str) -> None:
    """Copy ``text`` through the terminal and into the fallback file; the notification names the file."""
    app.copy_to_clipboard(text)
    try:
        saved = save_copy(text)
    except OSError as exc:
        app.notify(f"Copied {what} to the clipboard (OSC 52); saving a copy failed: {exc}",
                   severity="warning", markup=False)
        return
    app.notify(f"Copied {what} ({len(text)} characters) through the terminal (OSC 52). "
               f"If your terminal ignores that, it is also in {saved}", markup=False)


def copy_reply(app: App[Any], reply: str) -> None:
    """Copy the last reply's text (``reply``, empty when there is none)."""
    if not reply:
        app.notify("There is no reply to copy yet.", severity="warning")
        return
    copy(app, reply, "the last reply")


def copy_code(app: App[Any], reply: str) -> None:
    """Copy the last code block of the last reply (``reply``, empty when there is none)."""
    blocks = code_blocks(reply)
    if not blocks:
        app.notify("The last reply has no code block.", severity="warning")
        return
    copy(app, blocks[-1], "the last code block")
