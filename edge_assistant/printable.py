"""Text from a bundle or a model file, made safe to print in a terminal.

A manifest is untrusted input: an ESC in a bundle's description could move the
cursor, retitle the window or hide text when ``bundle info``, ``doctor`` or the
chat app prints it. Control characters (C0, DEL, C1) and the bidirectional
overrides that reorder what is shown are removed; everything else is kept.
"""

from __future__ import annotations

import re

_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UNPRINTABLE_KEEP_LINES = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: object, *, keep_newlines: bool = False) -> str:
    """``str(text)`` without control characters (newlines kept only when asked)."""
    pattern = _UNPRINTABLE_KEEP_LINES if keep_newlines else _UNPRINTABLE
    return pattern.sub("", str(text))
