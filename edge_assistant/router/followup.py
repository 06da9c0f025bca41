"""Follow-up detection, for conversation stickiness.

"now make it faster" or "and for 10?" mean nothing on their own: they continue
the previous request, so the previous modifier should keep answering unless the
new message carries strong evidence for another route. A follow-up is a short
message that opens with a continuation cue or points back at earlier content.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Longest message (in words) still read as a follow-up; longer ones stand alone.
MAX_WORDS = 10

# Openings that continue the previous request (matched at the start, case-insensitively).
CUES: tuple[str, ...] = (
    r"now\b",                     # "now make it faster"
    r"and\b",                     # "and for 10?"
    r"also\b",                    # "also handle negative numbers"
    r"then\b",                    # "then sort the result"
    r"but\b",                     # "but without recursion"
    r"what about\b",              # "what about n = 0?"
    r"how about\b",               # "how about in Rust?"
    r"what if\b",                 # "what if the list is empty?"
    r"(ok(ay)?|great|thanks?|cool|nice)[,.!]?\s+(now|and|can|could|please|make|do|also)\b",  # "ok, now ..."
    r"(can|could) you (also|now|make|do|change|add|explain)\b",  # "can you also add tests?"
    r"(make|do|try|change|rewrite|redo|explain) (it|that|this|them|the same)\b",  # "make it shorter"
    r"same\b",                    # "same for the other file"
    r"again\b",                   # "again, with 5 people"
    r"instead\b",                 # "instead use a dict"
    r"why\s*\?*\s*$",              # "why?" alone; "why does that work?" is caught by 'that' below
    r"(and|or) (if|for|with|without|in)\b",  # "or with 3 dice?"
    r"(with|without|for|in) \S+\??$",        # "for 10?", "in Python?", "without a loop"
)

# Words that point back at what was said before.
BACK_REFERENCES = r"\b(it|that|this|these|those|them|the same|above|previous|last one)\b"

_CUE_RE = re.compile(r"^\s*(?:" + "|".join(CUES) + ")", re.IGNORECASE)
_BACK_RE = re.compile(BACK_REFERENCES, re.IGNORECASE)


@dataclass(frozen=True)
class FollowUp:
    is_followup: bool
    cue: str      # what made it a follow-up, for `reason`


def detect(text: str) -> FollowUp:
    words = text.split()
    if not words or len(words) > MAX_WORDS:
        return FollowUp(False, "")
    match = _CUE_RE.match(text)
    if match:
        return FollowUp(True, f"opens with '{match.group(0).strip().lower()}'")
    if len(words) <= 6:
        back = _BACK_RE.search(text)
        if back:
            return FollowUp(True, f"refers back with '{back.group(0).lower()}'")
    return FollowUp(False, "")
