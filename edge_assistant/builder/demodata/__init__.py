"""Offline demo data: four generators whose answers are computed, not made up.

``code`` reads the standard library's own signatures and docstrings through
``inspect`` and writes small functions checked by running them; ``reasoning``
builds arithmetic and ordering problems whose step-by-step answers are computed;
``automation`` fills a table of shell, cron, systemd and CI tasks; ``chat`` is
general conversation for phase 1 and for the router's ``none`` class.
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


def write_demo(domain: str, rows: int, seed: int, out: Path) -> Path:
    """Write ``rows`` prompt/response rows of one domain as JSONL; returns the file."""
    from ..dataset import write_jsonl

    return write_jsonl(GENERATORS[domain](rows, seed), out)
