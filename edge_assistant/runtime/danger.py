"""Destructive shell commands in a reply: the one table of patterns, used by the chat app and ``ask``.

A small model will happily answer "delete old log files" with ``sudo rm -rf
/var/log``. Replies are never executed by edge-assistant, but users copy them,
so a reply that contains one of these commands gets a warning naming it. The
patterns are deliberately about the command, not the context: a warning on an
explanation of ``rm -rf`` costs a glance, a missed one can cost a disk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Danger:
    command: str      # what the warning calls it, e.g. "rm -rf"
    why: str          # what it does, in a few words


@dataclass(frozen=True)
class _Rule:
    danger: Danger
    pattern: re.Pattern[str]


def _rm_recursive_force(options: str) -> bool:
    short = "".join(o[1:] for o in options.split() if o.startswith("-") and not o.startswith("--"))
    long = {o for o in options.split() if o.startswith("--")}
    recursive = "r" in short or "R" in short or "--recursive" in long
    force = "f" in short or "--force" in long
    return recursive and force


# One row per command family. Each pattern finds a candidate; rm's flags are checked by
# _rm_recursive_force since they come in any order (-rf, -fr, -r -f, --recursive --force).
_RULES = (
    # rm with recursive and force flags: deletes a tree without asking.
    _Rule(Danger("rm -rf", "deletes files and folders recursively, without asking"),
          re.compile(r"\brm((?:\s+-{1,2}[A-Za-z][\w-]*)+)")),
    # mkfs and its mkfs.ext4/mkfs.vfat/... forms: formats a device, erasing it.
    _Rule(Danger("mkfs", "formats a disk or partition, erasing everything on it"),
          re.compile(r"\bmkfs(?:\.\w+)?\b")),
    # dd writing to a device (not /dev/null and friends): overwrites a disk.
    _Rule(Danger("dd of=/dev/…", "overwrites a disk device directly"),
          re.compile(r"\bdd\b[^\n]*\bof=/dev/(?!null\b|zero\b|stdout\b|stderr\b|fd/)\w")),
    # chmod -R 777 on an absolute path (or /): makes a whole tree writable by everyone.
    _Rule(Danger("chmod -R 777 /", "makes a whole tree writable and executable by every user"),
          re.compile(r"\bchmod\s+(?:-\w+\s+)*-\w*R\w*\s+(?:-\w+\s+)*0?777\s+/")),
    # A download piped straight into a shell: runs code no one has read.
    _Rule(Danger("curl … | sh", "runs a downloaded script without reading it first"),
          re.compile(r"\b(?:curl|wget)\b[^\n|]*\|\s*(?:sudo\s+(?:-\S+\s+)*)?(?:ba|z|da|k)?sh\b")),
)


def find_dangers(text: str) -> list[Danger]:
    """The destructive commands ``text`` contains, each family once, in table order."""
    found = []
    for rule in _RULES:
        for match in rule.pattern.finditer(text):
            if rule.danger.command == "rm -rf" and not _rm_recursive_force(match.group(1)):
                continue
            found.append(rule.danger)
            break
    return found


def danger_warning(dangers: list[Danger]) -> str:
    """One line for the user: which commands, what they do, what to do."""
    what = "; ".join(f"`{d.command}` {d.why}" for d in dangers)
    return f"this reply contains a destructive command ({what}): read it carefully before running anything"
