"""The chat app and its factory, used by ``edge-assistant chat`` and by the tests alike.

The app is interactive at once: when given a loader instead of a ready
assistant, it loads the model (first-run unpack, then llama.cpp) on a thread
worker and shows progress; a message sent meanwhile waits for the model.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable, Iterable, Protocol

from textual.app import App
from textual.binding import Binding

from ..errors import EdgeAssistantError, ModelError
from ..runtime.assistant import Assistant
from ..runtime.history import History
from ..settings import Settings
from .chat_screen import CHAT_BINDINGS, ChatScreen
from .messages import AssistantReady, LoadFailed, LoadNotice, LoadProgress
from .commands import commands_for
from .screens import HelpScreen

class LoadReport(Protocol):
    """How a loader tells the app what it is doing (called on the loading thread)."""

    def stage(self, text: str, fraction: float | None = None) -> None:
        """What loading does now, and how far (0..1; None when unknown)."""

    def notice(self, text: str) -> None:
        """Something the user should read once, shown as a notification."""


AssistantLoader = Callable[[LoadReport], Assistant]


class _PostingReport:
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

    def __init__(self, settings: Settings, assistant: Assistant | AssistantLoader, history: History) -> None:
        super().__init__()
        self.settings = settings
        self.history = history
        self._assistant_ready = threading.Event()
        self._load_error: str | None = None
        self._owns_assistant = not isinstance(assistant, Assistant)
        if isinstance(assistant, Assistant):
            self.assistant: Assistant | None = assistant
            self._loader: AssistantLoader | None = None
            self._assistant_ready.set()
        else:
            self.assistant = None
            self._loader = assistant
        self.chat_screen = ChatScreen()

    def get_default_screen(self) -> ChatScreen:
        return self.chat_screen

    @property
    def bundle_label(self) -> str:
        if self.assistant is not None:
            return self.assistant.bundle_name or "model"
        return self.settings.bundle or "loading…"

    @property
    def modifiers(self) -> tuple[str, ...] | None:
        """The bundle's modifiers, or None while the model is loading."""
        return tuple(self.assistant.engine.modifier_names) if self.assistant is not None else None

    def on_ready(self) -> None:
        # After the first frame: importing llama.cpp on another thread competes for the
        # GIL, and the prompt should be on screen before that starts.
        if self._loader is not None:
            self._load(self._loader)

    # -- loading ---------------------------------------------------------------------

    def _load(self, loader: AssistantLoader) -> None:
        # A plain daemon thread rather than a Textual worker: quitting must not wait
        # for a long first-run unpack to finish.
        threading.Thread(target=self._load_in_thread, args=(loader,), name="load-model", daemon=True).start()

    def _load_in_thread(self, loader: AssistantLoader) -> None:
        report = _PostingReport(self.chat_screen)
        try:
            report.stage("Loading the model…", None)
            assistant = loader(report)
        except EdgeAssistantError as exc:
            self._fail_load(str(exc))
            return
        except Exception as exc:
            self._fail_load(f"unexpected error while loading: {exc!r} (please report it)")
            raise
        self.assistant = assistant
        self._assistant_ready.set()
        self.chat_screen.post_message(AssistantReady(assistant.bundle_name or "model",
                                                     tuple(assistant.engine.modifier_names),
                                                     assistant.engine.description))

    def _fail_load(self, error: str) -> None:
        self._load_error = error
        self._assistant_ready.set()
        self.chat_screen.post_message(LoadFailed(error))

    def wait_for_assistant(self, stop: threading.Event | None = None) -> Assistant | None:
        """For worker threads: the assistant once loaded (None if ``stop`` is set first);
        a ModelError if loading failed."""
        while not self._assistant_ready.wait(0.1):
            if stop is not None and stop.is_set():
                return None
        if self.assistant is None:
            raise ModelError(f"there is no model to answer: {self._load_error}",
                             hint="fix the problem above and restart `edge-assistant chat`")
        return self.assistant

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
            self.push_screen(HelpScreen(self.help_keys(), commands_for(self.modifiers)))

    async def action_quit(self) -> None:
        # Stop a reply in progress first, so it is saved as ``stopped`` (not left partial).
        if self.chat_screen.stop_turn():
            await self.chat_screen.wait_for_turn(10)
        self.exit()

    def on_unmount(self) -> None:
        if self._owns_assistant and self.assistant is not None:
            self.assistant.close()


def make_app(settings: Settings, assistant: Assistant | AssistantLoader, history: History) -> ChatApp:
    """Build the chat app: from a ready assistant (tests) or a loader run in the background (the CLI)."""
    return ChatApp(settings, assistant, history)
