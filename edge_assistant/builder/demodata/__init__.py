"""Offline demo data: four generators whose answers are computed, not made up.

``code`` reads the standard library's own signatures and docstrings through
``inspect`` and writes small functions checked by running them; ``reasoning``
builds arithmetic and ordering problems whose step-by-step answers are computed;
``automation`` fills a table of shell, cron, systemd and CI tasks; ``chat`` is
general conversation for phase 1, for the router's ``none`` class and mixed into
every other domain (``GENERAL_SHARE``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from . import automation, chat, code, reasoning

Row = dict[str, str]

GENERATORS: dict[str, Callable[[int, int], list[Row]]] = {
    "chat": chat.generate,
    "code": code.generate,
    "reasoning": reasoning.generate,
    "automation": automation.generate,
}


# Share of general chat rows mixed into each domain's data, so a modifier keeps talking normally.
# The router never learns them as the domain's prompts (see stages.stage_router).
GENERAL_SHARE = 0.15


def demo_rows(domain: str, rows: int, seed: int) -> list[Row]:
    """``rows`` rows of one domain; a domain other than chat gets GENERAL_SHARE chat rows mixed in."""
    import random

    if domain == "chat":
        return chat.generate(rows, seed)
    general = int(rows * GENERAL_SHARE)
    out = GENERATORS[domain](rows - general, seed) + chat.generate(general, seed + 7919)
    random.Random(seed).shuffle(out)
    return out


def write_demo(domain: str, rows: int, seed: int, out: Path) -> Path:
    """Write ``rows`` prompt/response rows of one domain as JSONL; returns the file."""
    from ..dataset import write_jsonl

    return write_jsonl(demo_rows(domain, rows, seed), out)
