"""Saving a reply while it streams, so a crash loses at most a moment of it.

Used by the generation worker (never the UI thread): each piece is appended,
and the text so far is committed as ``partial`` every ``every_tokens`` pieces
or ``every_s`` seconds, whichever comes first. A commit costs well under a
millisecond in WAL mode, so this does not slow decoding measurably.
"""

from __future__ import annotations

import time
from typing import Callable

from .generation import GenerationResult
from .history import History, Status, StoredMessage


class ReplyRecorder:
    def __init__(self, history: History, message_id: int, *, every_tokens: int = 16, every_s: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.history = history
        self.message_id = message_id
        self.every_tokens = every_tokens
        self.every_s = every_s
        self._clock = clock
        self._pieces: list[str] = []     # joined into one string whenever the text is read
        self._count = 0
        self._saved_count = 0
        self._saved_at = clock()
        self.saves = 0

    @property
    def text(self) -> str:
        if len(self._pieces) > 1:  # join once, so reading the text stays cheap as it grows
            self._pieces[:] = ["".join(self._pieces)]
        return self._pieces[0] if self._pieces else ""

    @property
    def tokens(self) -> int:
        return self._count

    def add(self, piece: str) -> None:
        self._pieces.append(piece)
        self._count += 1
        if (self._count - self._saved_count >= self.every_tokens
                or self._clock() - self._saved_at >= self.every_s):
            self.flush()

    def flush(self) -> None:
        """Commit the text so far (still marked ``partial``)."""
        self.history.save_partial(self.message_id, self.text, self._count)
        self._saved_count = self._count
        self._saved_at = self._clock()
        self.saves += 1

    def finish(self, status: Status, result: GenerationResult | None = None,
               error: str | None = None) -> StoredMessage:
        """Commit the final text with how the reply ended."""
        return self.history.finish_reply(self.message_id, self.text, status, result, error)
