"""Byte-count progress bars on stderr, for long pack, verify and unpack steps.

Core code never draws anything: it takes a ``progress`` argument and calls it
with the byte count of each chunk it has done. The CLI (and the engine's
first-run unpack) passes the callback that ``byte_progress`` yields; the bar
appears only when stderr is a terminal, so pipes, logs and tests stay clean.

Two shapes are used:

* ``ProgressCallback`` ``(n_bytes) -> None``: one step of known size (unpack).
* ``ProgressFactory`` ``(description, total) -> context manager yielding a
  ProgressCallback``: several steps, each with its own bar (pack, verify).
  ``byte_progress`` itself is a ProgressFactory.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, ContextManager, Iterator

ProgressCallback = Callable[[int], None]
ProgressFactory = Callable[[str, int], ContextManager[ProgressCallback]]


def _ignore(n: int) -> None:
    return None


@contextmanager
def byte_progress(description: str, total: int) -> Iterator[ProgressCallback]:
    """A progress bar of ``total`` bytes on stderr; yields the callback to advance it."""
    if not sys.stderr.isatty():
        yield _ignore
        return
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                               TimeRemainingColumn, TransferSpeedColumn)

    bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                   TransferSpeedColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True)
    with bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


@contextmanager
def no_progress(description: str, total: int) -> Iterator[ProgressCallback]:
    """A ProgressFactory that draws nothing."""
    yield _ignore
