"""The chat app and its factory, used by ``edge-assistant chat`` and by the tests alike.

The app is interactive at once: when its handle on the model still has to load
it, the app loads it (first-run unpack, then llama.cpp) on a background thread
and shows progress; a message sent meanwhile waits for the model.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterable

from textual.app import App
from textual.binding import Binding

from ..errors import EdgeAssistantError
from ..runtime.assistant_handle import AssistantHandle
from ..runtime.history import History
from ..settings import Settings
from .chat_screen import CHAT_BINDINGS, ChatScreen
from .messages import AssistantReady, LoadFailed, LoadNotice, LoadProgress
from .commands import commands_for
from .screens import HelpScreen


class _PostingReport:
    """A :class:`~edge_assistant.runtime.assistant_handle.LoadReport` that posts to the screen."""

    def __init__(self, screen: ChatScreen) -> None:
        self.screen = screen

    def stage(self, text: str, fraction: float | None = None) -> None:
        self.screen.post_message(LoadProgress(text, fraction))

    def notice(self, text: str) -> None:
        self.screen.post_message(LoadNotice(text))


class ChatApp(App[None]):
    CSS_PATH = Path(__file__).with_name("chat.tcss")
    TITLE = "edge-assistant"
    ENABLE_COMMAND_PALETTE = False  # slash commands and F1 cover it; ctrl+p stays free
    BINDINGS = [
        Binding("f1", "help", "Help"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, settings: Settings, model: AssistantHandle, history: History) -> None:
        super().__init__()
        self.model = model
        self.chat_screen = ChatScreen(settings, history, model)

    def get_default_screen(self) -> ChatScreen:
        return self.chat_screen

    def on_ready(self) -> None:
        # After the first frame: importing llama.cpp on another thread competes for the
        # GIL, and the prompt should be on screen before that starts.
        if self.model.needs_loading:
            self._load()

    # -- loading ---------------------------------------------------------------------

    def _load(self) -> None:
        # A plain daemon thread rather than a Textual worker: quitting must not wait
        # for a long first-run unpack to finish.
        threading.Thread(target=self._load_in_thread, name="load-model", daemon=True).start()

    def _load_in_thread(self) -> None:
        report = _PostingReport(self.chat_screen)
        try:
            report.stage("Loading the model…", None)
            assistant = self.model.load(report)
        except EdgeAssistantError:
            self.chat_screen.post_message(LoadFailed(self.model.error or ""))
            return
        except Exception:
            self.chat_screen.post_message(LoadFailed(self.model.error or ""))
            raise
        self.chat_screen.post_message(AssistantReady(assistant.bundle_name or "model",
                                                     tuple(assistant.engine.modifier_names),
                                                     assistant.engine.description))

    # -- app-wide actions --------------------------------------------------------------

    def help_keys(self) -> Iterable[tuple[str, str]]:
        yield "Enter", "send the message (or run a /command)"
        for binding in [*CHAT_BINDINGS, *self.BINDINGS]:
            if binding.action == "app.help":
                continue
            yield self.get_key_display(binding), binding.tooltip or binding.description
        yield "Tab", "move between the prompt and the conversation list"
        yield "?", "this help, when the prompt is not focused"

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.help_keys(), commands_for(self.model.modifiers)))

    async def action_quit(self) -> None:
        # Stop a reply in progress first, so it is saved as ``stopped`` (not left partial).
        if self.chat_screen.stop_turn():
            await self.chat_screen.wait_for_turn(10)
        self.exit()

    def on_unmount(self) -> None:
        self.model.close()  # only if the app loaded it: a ready assistant is its maker's to close


def make_app(settings: Settings, model: AssistantHandle, history: History) -> ChatApp:
    """Build the chat app around a handle on the model: ready (tests) or loaded in the background (the CLI)."""
    return ChatApp(settings, model, history)
