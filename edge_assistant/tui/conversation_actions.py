"""What the user does to the open conversation besides chatting: rename, system prompt, delete, search, export.

Each action asks through a dialog when it needs to, then changes the history
and tells the screen what to show. The screen is reached only through
:class:`ConversationHost`, so this module never imports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Awaitable, Protocol

from textual.app import App

from .. import paths
from ..runtime.history import History
from .error_notice import surfaces_errors
from .screens import Confirm, SearchScreen, TextPrompt


class ConversationHost(Protocol):
    """The part of the chat screen these actions use."""

    conversation_id: int | None        # None: a new conversation, not stored until its first message
    pending_system_prompt: str         # the system prompt of the open (or next) conversation
    sub_title: Any                     # the screen's subtitle: the open conversation's title

    @property
    def app(self) -> App[Any]: ...
    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = True) -> None: ...
    def require_conversation(self, what: str) -> int | None: ...
    def busy(self) -> bool: ...
    def refresh_sidebar(self) -> None: ...
    def open_conversation(self, conversation_id: int) -> Awaitable[None]: ...
    def new_conversation(self) -> Awaitable[None]: ...
    def run_worker(self, work: Any, *, group: str = "default") -> Any: ...


class ConversationActions:
    def __init__(self, host: ConversationHost, history: History) -> None:
        self.host = host
        self.history = history

    def notify(self, message: str, **options: Any) -> None:
        self.host.notify(message, **options)

    @surfaces_errors
    def rename(self, title: str) -> None:
        conversation_id = self.host.require_conversation("rename")
        if conversation_id is not None:
            conversation = self.history.rename(conversation_id, title)
            self.host.sub_title = conversation.title
            self.host.refresh_sidebar()
            self.notify(f"Renamed to “{conversation.title}”.", markup=False)

    def ask_rename(self) -> None:
        conversation_id = self.host.require_conversation("rename")
        if conversation_id is not None:
            current = self.history.conversation(conversation_id).title
            self.host.app.push_screen(TextPrompt("Rename conversation", current),
                                      lambda title: self.rename(title) if title is not None else None)

    @surfaces_errors
    def set_system_prompt(self, prompt: str) -> None:
        self.host.pending_system_prompt = prompt
        if self.host.conversation_id is not None:
            self.history.set_system_prompt(self.host.conversation_id, prompt)
        self.notify("System prompt saved for this conversation." if prompt.strip()
                    else "System prompt cleared for this conversation.")

    def ask_system_prompt(self) -> None:
        self.host.app.push_screen(TextPrompt("System prompt for this conversation", self.host.pending_system_prompt,
                                             "how the assistant should behave"),
                                  lambda prompt: self.set_system_prompt(prompt) if prompt is not None else None)

    def ask_delete(self) -> None:
        conversation_id = self.host.require_conversation("delete")
        if conversation_id is None or self.host.busy():
            return
        title = self.history.conversation(conversation_id).title
        self.host.app.push_screen(Confirm(f"Delete “{title}” and all its messages?"),
                                  lambda yes: self._delete(conversation_id) if yes else None)

    @surfaces_errors
    async def _delete(self, conversation_id: int) -> None:
        self.history.delete_conversation(conversation_id)
        self.notify("Conversation deleted.")
        remaining = self.history.conversations(limit=1)
        if remaining:
            await self.host.open_conversation(remaining[0].id)
        else:
            await self.host.new_conversation()

    def search(self, query: str = "") -> None:
        def chosen(conversation_id: int | None) -> None:
            if conversation_id is not None:
                self.host.run_worker(self.host.open_conversation(conversation_id), group="open")
        self.host.app.push_screen(SearchScreen(self.history, query), chosen)

    @surfaces_errors
    def export(self, folder: str = "") -> None:
        conversation_id = self.host.require_conversation("export")
        if conversation_id is None:
            return
        directory = Path(folder).expanduser() if folder else paths.data_dir() / "exports"
        written = self.history.export_markdown(conversation_id, directory)
        self.notify(f"Exported to {written}", title="Export", timeout=10, markup=False)
