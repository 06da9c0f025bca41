"""Typed messages from the load and generation workers to the chat screen.

Workers post these (``post_message`` is thread-safe); widgets change only in
their handlers, on the UI thread. ``ReplyProgress`` carries the whole text so
far, so a backlog collapses to the newest one (``can_replace``) and the screen
never lags the model however fast it decodes.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from ..router.decision import RouteDecision
from ..runtime.history import StoredMessage


@dataclass
class LoadProgress(Message, bubble=False):
    """The model is still loading: what it is doing, and how far (0..1, or None if unknown)."""

    stage: str
    fraction: float | None = None

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, LoadProgress)


@dataclass
class LoadNotice(Message, bubble=False):
    """Something the loader wants the user to read (e.g. the demo model is in use)."""

    text: str


@dataclass
class AssistantReady(Message, bubble=False):
    """The model is loaded; the bundle's name and modifiers are known."""

    bundle: str
    modifiers: tuple[str, ...]
    description: str


@dataclass
class LoadFailed(Message, bubble=False):
    error: str


@dataclass
class UserCommitted(Message, bubble=False):
    """The user's turn is in the history (before generation started)."""

    message: StoredMessage


@dataclass
class ReplyStarted(Message, bubble=False):
    """The router chose who answers; the reply's row exists, marked partial."""

    reply_id: int
    decision: RouteDecision | None


@dataclass
class ReplyProgress(Message, bubble=False):
    reply_id: int
    text: str
    tokens: int
    tok_s: float

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ReplyProgress) and message.reply_id == self.reply_id


@dataclass
class ReplyFinished(Message, bubble=False):
    """The reply is stored with its final status (complete, stopped or error)."""

    message: StoredMessage


@dataclass
class TurnFailed(Message, bubble=False):
    """A turn ended with an error the user should read (the reply row says ``error``)."""

    error: str
