"""Counting the whole-file reads that edge_assistant.hashing makes to hash files."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def counting_hash_reads() -> Iterator[Counter[Path]]:
    """Yield a Counter of resolved path -> times the hashing module read that file to hash it.

    The real reader still does the reading; it is only wrapped to count its calls.
    """
    from edge_assistant import hashing

    reads: Counter[Path] = Counter()
    real = hashing._read_digest

    def counting(path, progress):  # type: ignore[no-untyped-def]
        reads[Path(path).resolve()] += 1
        return real(path, progress)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hashing, "_read_digest", counting)
        yield reads
