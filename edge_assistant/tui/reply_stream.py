"""Drawing the replies being generated: their views, and how often their text is drawn.

Every token reaches the screen (a backlog collapses to the newest, see
``messages.ReplyProgress``); drawing happens at most every ``RENDER_EVERY_S``,
since each frame lays out the screen and takes CPU (and the GIL) that decoding
on the worker thread could use.
"""

from __future__ import annotations

import time
from typing import Callable

from textual.timer import Timer
from textual.widget import Widget

from .messages import ReplyProgress
from .widgets import ReplyView

# Streaming text is drawn at most this often (seconds): ten frames a second reads as live.
# Slow frames stretch the interval, up to the maximum.
RENDER_EVERY_S = 0.1
MAX_RENDER_EVERY_S = 0.5


class ReplyStream:
    def __init__(self, clock: Widget, show_speed: Callable[[float], None]) -> None:
        self._clock = clock                # whose timers and refreshes pace the frames (the screen)
        self._show_speed = show_speed      # the status line's tok/s
        self.views: dict[int, ReplyView] = {}
        self._pending: dict[int, ReplyProgress] = {}
        self._timer: Timer | None = None
        self._last_render = 0.0
        self._interval = RENDER_EVERY_S

    def add(self, view: ReplyView, reply_id: int) -> None:
        """A reply started: its text will go to ``view``."""
        self.views[reply_id] = view

    async def progress(self, event: ReplyProgress) -> None:
        self._pending[event.reply_id] = event
        if self._timer is None:
            delay = self._last_render + self._interval - time.monotonic()
            if delay <= 0:
                await self._render()
            else:
                self._timer = self._clock.set_timer(delay, self._render)

    async def _render(self) -> None:
        self._timer = None
        started = time.monotonic()
        pending, self._pending = self._pending, {}
        for event in pending.values():
            view = self.views.get(event.reply_id)
            if view is None or not view.is_attached:
                continue  # the user switched conversations; the worker still saves it
            await view.show_text(event.text, event.tokens, event.tok_s)
            self._show_speed(event.tok_s)
        self._last_render = time.monotonic()
        self._clock.call_after_refresh(self._frame_drawn, started)

    def _frame_drawn(self, started: float) -> None:
        # Back off when frames are slow (a long reply, a busy machine): drawing may
        # take at most about a fifth of the time, the rest is left to decoding.
        cost = time.monotonic() - started
        self._interval = min(MAX_RENDER_EVERY_S, max(RENDER_EVERY_S, 4 * cost))

    def finish(self, reply_id: int) -> ReplyView | None:
        """The reply is saved: its final text supersedes any frame still waiting; its view, if known."""
        self._pending.pop(reply_id, None)
        return self.views.pop(reply_id, None)
