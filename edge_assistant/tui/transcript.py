"""The transcript: the views of the open conversation's messages, its latest turns first on show."""

from __future__ import annotations

from typing import Sequence

from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Button

from ..runtime.history import StoredMessage
from .widgets import ReplyView, UserTurn

# How many stored messages opening a conversation shows before "Show earlier messages".
RECENT_MESSAGES = 6


def message_view(message: StoredMessage) -> Widget:
    return UserTurn(message.content, message.id) if message.role == "user" else ReplyView.from_stored(message)


class Transcript(VerticalScroll):
    """The scrolling column of turns; it stays anchored to the end while a reply streams."""

    async def show(self, stored: Sequence[StoredMessage]) -> None:
        """Replace what is shown by a conversation's latest messages (and a button for the rest)."""
        await self.remove_children()
        # Only the latest turns: each reply is a Markdown document to parse and lay out,
        # and opening a long conversation must not stall start-up. Older ones on request.
        recent = stored[max(len(stored) - RECENT_MESSAGES, 0):]
        views: list[Widget] = []
        if len(stored) > len(recent):
            views.append(Button(f"Show {len(stored) - len(recent)} earlier messages", id="show-earlier",
                                variant="default"))
        views += [message_view(m) for m in recent]
        await self.mount_all(views)
        self.anchor()

    async def show_earlier(self, stored: Sequence[StoredMessage], button: Button) -> None:
        """Put the messages of ``stored`` that are not shown yet above the others, instead of ``button``."""
        shown = sum(1 for child in self.children if isinstance(child, (UserTurn, ReplyView)))
        earlier = [message_view(m) for m in stored[: max(len(stored) - shown, 0)]]
        await button.remove()
        if earlier:
            self.release_anchor()
            await self.mount_all(earlier, before=0)
            self.scroll_home(animate=False)

    def last_reply(self) -> ReplyView | None:
        replies = list(self.query(ReplyView))
        return replies[-1] if replies else None

    def has_user_turn(self) -> bool:
        return any(isinstance(child, UserTurn) for child in self.children)

    async def remove_trailing_replies(self) -> None:
        """Remove the reply views after the last question (regenerating replaces them)."""
        trailing: list[ReplyView] = []
        for child in reversed(list(self.children)):
            if not isinstance(child, ReplyView):
                break
            trailing.append(child)
        for view in trailing:
            await view.remove()
