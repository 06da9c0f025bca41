"""The main screen: conversations on the left, the transcript, the prompt, the status line.

Generation runs on a thread worker (:class:`~edge_assistant.runtime.chat_turn.ChatTurn`);
it reports through typed messages (``messages.py``) and this screen changes
widgets only in their handlers. Every ``EdgeAssistantError`` raised by an action
becomes a notification (``surfaces_errors``), never a crash.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Button, Footer, Input, OptionList
from textual.worker import Worker, WorkerState

from .. import paths
from ..errors import EdgeAssistantError
from ..router.decision import RouteDecision
from ..runtime.assistant import AUTO, NONE
from ..runtime.chat_turn import ChatTurn, TurnRequest
from ..runtime.firstrun import WELCOME, first_time
from ..runtime.generation import SamplingParams
from ..runtime.history import StoredMessage
from . import clipboard
from .commands import COMMAND_NAMES, MODIFIER_COMMANDS, describe_mode, parse
from .messages import (AssistantReady, LoadFailed, LoadNotice, LoadProgress, ReplyFinished, ReplyProgress,
                       ReplyStarted, TurnFailed, UserCommitted)
from .screens import Confirm, ModifierPicker, SearchScreen, TextPrompt
from .widgets import ConversationList, LoadPanel, ReplyView, StatusLine, UserTurn, Welcome

if TYPE_CHECKING:
    from .app import ChatApp

F = TypeVar("F", bound=Callable[..., Any])


def surfaces_errors(method: F) -> F:
    """Show an ``EdgeAssistantError`` from a handler as a notification instead of crashing."""
    if inspect.iscoroutinefunction(method):
        @functools.wraps(method)
        async def async_wrapper(self: "ChatScreen", *args: Any, **kwargs: Any) -> Any:
            try:
                return await method(self, *args, **kwargs)
            except EdgeAssistantError as exc:
                self.notify(str(exc), severity="error", title="edge-assistant", markup=False)
        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(method)
    def wrapper(self: "ChatScreen", *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except EdgeAssistantError as exc:
            self.notify(str(exc), severity="error", title="edge-assistant", markup=False)
    return wrapper  # type: ignore[return-value]


class _PostingObserver:
    """Turns the worker's callbacks into messages for the screen (thread-safe)."""

    def __init__(self, screen: "ChatScreen") -> None:
        self.screen = screen

    def user_committed(self, message: StoredMessage) -> None:
        self.screen.post_message(UserCommitted(message))

    def reply_started(self, reply_id: int, decision: RouteDecision | None) -> None:
        self.screen.post_message(ReplyStarted(reply_id, decision))

    def reply_progress(self, reply_id: int, text: str, tokens: int, tok_s: float) -> None:
        self.screen.post_message(ReplyProgress(reply_id, text, tokens, tok_s))

    def reply_finished(self, message: StoredMessage) -> None:
        self.screen.post_message(ReplyFinished(message))


# Keys of the chat screen: shown in the footer (show=True) and, all of them, on the help screen.
CHAT_BINDINGS = [
    Binding("escape", "stop", "Stop", tooltip="Stop generating; the partial reply is kept, marked stopped"),
    Binding("ctrl+n", "new_conversation", "New", tooltip="Start a new conversation"),
    Binding("ctrl+o", "pick_modifier", "Modifier", tooltip="Choose who answers: auto, base or a modifier"),
    Binding("ctrl+t", "toggle_reasons", "Why", tooltip="Show or hide why each modifier was chosen"),
    Binding("ctrl+r", "regenerate", "Regenerate", show=False, tooltip="Regenerate the last reply"),
    Binding("ctrl+y", "copy_reply", "Copy reply", show=False, tooltip="Copy the last reply"),
    Binding("ctrl+g", "copy_code", "Copy code", show=False, tooltip="Copy the last code block of the last reply"),
    Binding("ctrl+s", "export", "Export", tooltip="Export this conversation to Markdown"),
    Binding("ctrl+f", "search", "Search", show=False, tooltip="Search all conversations"),
    Binding("f2", "rename", "Rename", show=False, tooltip="Rename this conversation"),
    Binding("f3", "system_prompt", "System", show=False, tooltip="Edit this conversation's system prompt"),
    Binding("f8", "delete_conversation", "Delete", show=False, tooltip="Delete this conversation"),
    Binding("ctrl+b", "toggle_sidebar", "Sidebar", show=False, tooltip="Show or hide the conversation list"),
    Binding("question_mark", "app.help", "Help", show=False, tooltip="Help (when the prompt is not focused)"),
]


# Streaming text is drawn at most this often (seconds): ten frames a second reads as live.
# Slow frames stretch the interval, up to the maximum.
RENDER_EVERY_S = 0.1
MAX_RENDER_EVERY_S = 0.5

# How many stored messages opening a conversation shows before "Show earlier messages".
RECENT_MESSAGES = 6


def _view(message: StoredMessage) -> Widget:
    return UserTurn(message.content, message.id) if message.role == "user" else ReplyView.from_stored(message)


class ChatScreen(Screen[None]):
    BINDINGS = CHAT_BINDINGS
    app: "ChatApp"

    def __init__(self) -> None:
        super().__init__()
        self.conversation_id: int | None = None
        self.turn: ChatTurn | None = None
        self._turn_done = threading.Event()
        self._turn_done.set()
        self._replies: dict[int, ReplyView] = {}
        self._pending_progress: dict[int, ReplyProgress] = {}
        self._render_timer: Timer | None = None
        self._last_render = 0.0
        self._render_interval = RENDER_EVERY_S
        self.mode = AUTO
        self.pending_system_prompt = ""

    # -- layout -------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            sidebar = ConversationList(id="sidebar")
            sidebar.border_title = "Conversations"
            yield sidebar
            with Vertical(id="chat"):
                yield VerticalScroll(id="transcript")
                yield LoadPanel(id="load-panel")
                yield Input(placeholder="Ask anything  ·  /help lists commands  ·  F1 keys", id="prompt")
        yield StatusLine(id="status")
        yield Footer()

    @property
    def transcript(self) -> VerticalScroll:
        return self.query_one("#transcript", VerticalScroll)

    @property
    def status(self) -> StatusLine:
        return self.query_one(StatusLine)

    @property
    def prompt(self) -> Input:
        return self.query_one("#prompt", Input)

    async def on_mount(self) -> None:
        settings = self.app.settings
        self.mode = settings.modifier
        self.pending_system_prompt = settings.system_prompt
        status = self.status
        status.mode = describe_mode(self.mode)
        status.bundle = self.app.bundle_label
        if self.app.assistant is not None:
            self.query_one(LoadPanel).display = False
        else:
            status.state = "loading the model…"
        self.transcript.anchor()
        conversations = self.app.history.conversations()
        if conversations:
            await self.open_conversation(conversations[0].id)
        else:
            await self.new_conversation()
            # The very first run: an empty history and no welcome shown before.
            if first_time(WELCOME):
                await self.transcript.mount(Welcome())
        self.prompt.focus()

    def _refresh_sidebar(self) -> None:
        self.query_one(ConversationList).show(self.app.history.conversations(), self.conversation_id)

    # -- loading ------------------------------------------------------------------

    def on_load_progress(self, event: LoadProgress) -> None:
        self.query_one(LoadPanel).show(event.stage, event.fraction)
        self.status.state = event.stage

    def on_assistant_ready(self, event: AssistantReady) -> None:
        self.query_one(LoadPanel).display = False
        self.status.bundle = event.bundle
        self.status.state = "generating…" if self.turn is not None else ""
        if self.mode not in (AUTO, NONE) and self.mode not in event.modifiers:
            self._unknown_modifier(self.mode, event.modifiers)
            self.mode = AUTO
            self.status.mode = describe_mode(self.mode)

    def on_load_notice(self, event: LoadNotice) -> None:
        self.notify(event.text, timeout=15, markup=False)

    def on_load_failed(self, event: LoadFailed) -> None:
        self.query_one(LoadPanel).display = False
        self.status.state = "no model"
        self.notify(event.error, severity="error", title="The model did not load", timeout=30, markup=False)

    # -- sending and streaming ------------------------------------------------------

    @on(Input.Submitted, "#prompt")
    @surfaces_errors
    async def submitted(self, event: Input.Submitted) -> None:
        parsed = parse(event.value)
        if parsed.command is not None:
            self.prompt.clear()
            await self.run_command(parsed.command, parsed.text)
            return
        if not parsed.text:
            return
        if await self.send(parsed.text, self.mode):
            self.prompt.clear()

    def _unknown_modifier(self, name: str, known: tuple[str, ...] | list[str]) -> None:
        if known:
            text = f"This bundle has no modifier '{name}'. Choose auto, base or one of: {', '.join(known)}."
        else:
            text = f"This bundle has no modifiers, so '{name}' cannot answer: the base model answers everything."
        self.notify(text, severity="warning", title="Unknown modifier", markup=False)

    def _check_override(self, override: str) -> bool:
        """False (with a notification) when the loaded bundle lacks the modifier."""
        modifiers = self.app.modifiers
        if override in (AUTO, NONE) or modifiers is None or override in modifiers:
            return True
        self._unknown_modifier(override, modifiers)
        return False

    def _busy(self) -> bool:
        if self.turn is not None:
            self.notify("Still answering: press Esc to stop it first.", severity="warning")
            return True
        return False

    async def send(self, text: str, override: str) -> bool:
        """Send ``text`` (answered as ``override`` says); False if it was not sent."""
        if self._busy() or not self._check_override(override):
            return False
        history = self.app.history
        if self.conversation_id is None:
            conversation = history.create_conversation(text, self.pending_system_prompt)
            self.conversation_id = conversation.id
            self._refresh_sidebar()
        await self.transcript.mount(UserTurn(text))
        self.transcript.anchor()
        self._start_turn(TurnRequest(self.conversation_id, text, override, self._sampling()))
        return True

    def _sampling(self) -> SamplingParams:
        s = self.app.settings
        return SamplingParams.from_settings(s)

    def _start_turn(self, request: TurnRequest) -> None:
        self.turn = ChatTurn(self.app.history, self.app.wait_for_assistant, request, _PostingObserver(self))
        self._turn_done.clear()
        self.status.state = "generating…" if self.app.assistant is not None else "waiting for the model…"
        self._run_turn(self.turn)

    @work(thread=True, group="turn", exit_on_error=False)
    def _run_turn(self, turn: ChatTurn) -> None:
        try:
            turn.run()
        except EdgeAssistantError as exc:
            self.post_message(TurnFailed(str(exc)))
        except Exception as exc:
            # A bug, not a user error: the reply is already marked ``error``; say so and keep the app alive.
            self.post_message(TurnFailed(f"unexpected error: {exc!r} (please report it)"))
            raise
        finally:
            self._turn_done.set()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "turn" and event.state in (WorkerState.SUCCESS, WorkerState.ERROR,
                                                             WorkerState.CANCELLED):
            finished, self.turn = self.turn, None
            if self.status.state in ("generating…", "waiting for the model…", "stopping…"):
                self.status.state = ""
            if finished is not None and event.state == WorkerState.SUCCESS:
                self._catch_up(finished)

    @work(thread=True, group="catch-up", exit_on_error=False)
    def _catch_up(self, turn: ChatTurn) -> None:
        """While the user reads and types: the engine's other kept states read this reply, so a
        switch back to their modifier reads only the next question. A new turn meanwhile waits
        at most for the one state being read; a failure here only costs that later read."""
        try:
            turn.catch_up()
        except EdgeAssistantError:
            pass

    def on_user_committed(self, event: UserCommitted) -> None:
        self._refresh_sidebar()  # the conversation moved to the top

    async def on_reply_started(self, event: ReplyStarted) -> None:
        view = ReplyView(event.reply_id)
        self._replies[event.reply_id] = view
        await self.transcript.mount(view)
        view.start(event.decision)
        self._show_route(event.decision.modifier if event.decision else None,
                         event.decision.confidence if event.decision else None)
        if self.status.state == "waiting for the model…":
            self.status.state = "generating…"

    async def on_reply_progress(self, event: ReplyProgress) -> None:
        # Every token arrives here (a backlog collapses to the newest); drawing happens at
        # most every RENDER_EVERY_S, since each frame lays out the screen and takes CPU
        # (and the GIL) that decoding on the worker thread could use.
        self._pending_progress[event.reply_id] = event
        if self._render_timer is None:
            delay = self._last_render + self._render_interval - time.monotonic()
            if delay <= 0:
                await self._render_progress()
            else:
                self._render_timer = self.set_timer(delay, self._render_progress)

    async def _render_progress(self) -> None:
        self._render_timer = None
        started = time.monotonic()
        pending, self._pending_progress = self._pending_progress, {}
        for event in pending.values():
            view = self._replies.get(event.reply_id)
            if view is None or not view.is_attached:
                continue  # the user switched conversations; the worker still saves it
            await view.show_text(event.text, event.tokens, event.tok_s)
            self.status.tok_s = event.tok_s
        self._last_render = time.monotonic()
        self.call_after_refresh(self._frame_drawn, started)

    def _frame_drawn(self, started: float) -> None:
        # Back off when frames are slow (a long reply, a busy machine): drawing may
        # take at most about a fifth of the time, the rest is left to decoding.
        cost = time.monotonic() - started
        self._render_interval = min(MAX_RENDER_EVERY_S, max(RENDER_EVERY_S, 4 * cost))

    async def on_reply_finished(self, event: ReplyFinished) -> None:
        self._pending_progress.pop(event.message.id, None)  # the final text supersedes it
        view = self._replies.pop(event.message.id, None)
        if view is not None and view.is_attached:
            await view.finish(event.message)
        if event.message.decode_tok_s:
            self.status.tok_s = event.message.decode_tok_s

    def on_turn_failed(self, event: TurnFailed) -> None:
        self.notify(event.error, severity="error", title="The reply failed", timeout=15, markup=False)

    def _show_route(self, modifier: str | None, confidence: float | None) -> None:
        who = modifier or "base"
        self.status.answered_by = who if confidence is None else f"{who} ({confidence:.0%})"

    def stop_turn(self) -> bool:
        if self.turn is None:
            return False
        self.turn.stop()
        self.status.state = "stopping…"
        return True

    async def wait_for_turn(self, timeout_s: float) -> bool:
        """Wait (without blocking the UI) until the worker has saved the reply."""
        return await asyncio.to_thread(self._turn_done.wait, timeout_s)

    async def on_unmount(self) -> None:
        # Stop first so the worker marks the reply ``stopped`` before the history closes.
        self.stop_turn()
        await self.wait_for_turn(10)

    def action_stop(self) -> None:
        self.stop_turn()

    # -- conversations ------------------------------------------------------------------

    @surfaces_errors
    async def open_conversation(self, conversation_id: int) -> None:
        if self.conversation_id != conversation_id and self._busy():
            return
        history = self.app.history
        conversation = history.conversation(conversation_id)
        stored = history.messages(conversation_id)
        self.conversation_id = conversation.id
        self.pending_system_prompt = conversation.system_prompt
        await self.transcript.remove_children()
        # Only the latest turns: each reply is a Markdown document to parse and lay out,
        # and opening a long conversation must not stall start-up. Older ones on request.
        recent = stored[max(len(stored) - RECENT_MESSAGES, 0):]
        views: list[Widget] = []
        if len(stored) > len(recent):
            views.append(Button(f"Show {len(stored) - len(recent)} earlier messages", id="show-earlier",
                                variant="default"))
        views += [_view(m) for m in recent]
        await self.transcript.mount_all(views)
        self.transcript.anchor()
        last = next((m for m in reversed(stored) if m.role == "assistant"), None)
        if last is not None:
            self._show_route(last.modifier, last.route_confidence)
            self.status.tok_s = last.decode_tok_s or 0.0
        else:
            self.status.answered_by, self.status.tok_s = "", 0.0
        self.sub_title = conversation.title
        self._refresh_sidebar()

    @on(Button.Pressed, "#show-earlier")
    @surfaces_errors
    async def show_earlier(self, event: Button.Pressed) -> None:
        assert self.conversation_id is not None
        shown = sum(1 for child in self.transcript.children if isinstance(child, (UserTurn, ReplyView)))
        stored = self.app.history.messages(self.conversation_id)
        earlier = [_view(m) for m in stored[: max(len(stored) - shown, 0)]]
        await event.button.remove()
        if earlier:
            self.transcript.release_anchor()
            await self.transcript.mount_all(earlier, before=0)
            self.transcript.scroll_home(animate=False)

    async def new_conversation(self) -> None:
        self.conversation_id = None
        self.pending_system_prompt = self.app.settings.system_prompt
        await self.transcript.remove_children()
        self.status.answered_by, self.status.tok_s = "", 0.0
        self.sub_title = "New conversation"
        self._refresh_sidebar()
        self.prompt.focus()

    @on(OptionList.OptionSelected, "#sidebar")
    async def conversation_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            await self.open_conversation(int(event.option.id))
            self.prompt.focus()

    @surfaces_errors
    async def action_new_conversation(self) -> None:
        if not self._busy():
            await self.new_conversation()

    def _require_conversation(self, what: str) -> int | None:
        if self.conversation_id is None:
            self.notify(f"Nothing to {what} yet: this conversation has no messages.", severity="warning")
        return self.conversation_id

    @surfaces_errors
    def rename(self, title: str) -> None:
        conversation_id = self._require_conversation("rename")
        if conversation_id is not None:
            conversation = self.app.history.rename(conversation_id, title)
            self.sub_title = conversation.title
            self._refresh_sidebar()
            self.notify(f"Renamed to “{conversation.title}”.", markup=False)

    def action_rename(self) -> None:
        conversation_id = self._require_conversation("rename")
        if conversation_id is not None:
            current = self.app.history.conversation(conversation_id).title
            self.app.push_screen(TextPrompt("Rename conversation", current),
                                 lambda title: self.rename(title) if title is not None else None)

    @surfaces_errors
    def set_system_prompt(self, prompt: str) -> None:
        self.pending_system_prompt = prompt
        if self.conversation_id is not None:
            self.app.history.set_system_prompt(self.conversation_id, prompt)
        self.notify("System prompt saved for this conversation." if prompt.strip()
                    else "System prompt cleared for this conversation.")

    def action_system_prompt(self) -> None:
        self.app.push_screen(TextPrompt("System prompt for this conversation", self.pending_system_prompt,
                                        "how the assistant should behave"),
                             lambda prompt: self.set_system_prompt(prompt) if prompt is not None else None)

    def action_delete_conversation(self) -> None:
        conversation_id = self._require_conversation("delete")
        if conversation_id is None or self._busy():
            return
        title = self.app.history.conversation(conversation_id).title
        self.app.push_screen(Confirm(f"Delete “{title}” and all its messages?"),
                             lambda yes: self._delete(conversation_id) if yes else None)

    @surfaces_errors
    async def _delete(self, conversation_id: int) -> None:
        self.app.history.delete_conversation(conversation_id)
        self.notify("Conversation deleted.")
        remaining = self.app.history.conversations(limit=1)
        if remaining:
            await self.open_conversation(remaining[0].id)
        else:
            await self.new_conversation()

    def action_search(self, query: str = "") -> None:
        def chosen(conversation_id: int | None) -> None:
            if conversation_id is not None:
                self.run_worker(self.open_conversation(conversation_id), group="open")
        self.app.push_screen(SearchScreen(self.app.history, query), chosen)

    def action_toggle_sidebar(self) -> None:
        sidebar = self.query_one("#sidebar")
        sidebar.display = not sidebar.display

    def action_toggle_reasons(self) -> None:
        self.toggle_class("-show-reasons")

    # -- modifiers ----------------------------------------------------------------------

    def set_mode(self, override: str) -> None:
        if self._check_override(override):
            self.mode = override
            self.status.mode = describe_mode(override)
            self.notify(f"From now on: {describe_mode(override)} answers." if override != AUTO
                        else "From now on: the router decides who answers.")

    def action_pick_modifier(self) -> None:
        modifiers = self.app.modifiers
        if modifiers is None:
            self.notify("The model is still loading; the modifiers are not known yet.", severity="warning")
            return
        self.app.push_screen(ModifierPicker(modifiers, self.mode),
                             lambda choice: self.set_mode(choice) if choice is not None else None)

    # -- replies ------------------------------------------------------------------------

    @surfaces_errors
    async def action_regenerate(self) -> None:
        if self._busy() or self._require_conversation("regenerate") is None:
            return
        assert self.conversation_id is not None
        # The turn deletes the trailing reply rows; here only their views go.
        trailing: list[ReplyView] = []
        for child in reversed(list(self.transcript.children)):
            if not isinstance(child, ReplyView):
                break
            trailing.append(child)
        if not any(isinstance(child, UserTurn) for child in self.transcript.children):
            self.notify("Nothing to regenerate yet.", severity="warning")
            return
        for view in trailing:
            await view.remove()
        self._start_turn(TurnRequest(self.conversation_id, None, self.mode, self._sampling()))

    def _last_reply(self) -> ReplyView | None:
        replies = list(self.transcript.query(ReplyView))
        return replies[-1] if replies else None

    def _copy(self, text: str, what: str) -> None:
        self.app.copy_to_clipboard(text)
        try:
            saved = clipboard.save_copy(text)
        except OSError as exc:
            self.notify(f"Copied {what} to the clipboard (OSC 52); saving a copy failed: {exc}",
                        severity="warning", markup=False)
            return
        self.notify(f"Copied {what} ({len(text)} characters) through the terminal (OSC 52). "
                    f"If your terminal ignores that, it is also in {saved}", markup=False)

    def action_copy_reply(self) -> None:
        reply = self._last_reply()
        if reply is None or not reply.text:
            self.notify("There is no reply to copy yet.", severity="warning")
            return
        self._copy(reply.text, "the last reply")

    def action_copy_code(self) -> None:
        reply = self._last_reply()
        blocks = clipboard.code_blocks(reply.text) if reply is not None else []
        if not blocks:
            self.notify("The last reply has no code block.", severity="warning")
            return
        self._copy(blocks[-1], "the last code block")

    @surfaces_errors
    def export(self, folder: str = "") -> None:
        conversation_id = self._require_conversation("export")
        if conversation_id is None:
            return
        directory = Path(folder).expanduser() if folder else paths.data_dir() / "exports"
        written = self.app.history.export_markdown(conversation_id, directory)
        self.notify(f"Exported to {written}", title="Export", timeout=10, markup=False)

    def action_export(self) -> None:
        self.export()

    # -- slash commands -----------------------------------------------------------------

    async def run_command(self, name: str, arg: str) -> None:
        if name not in COMMAND_NAMES:
            self.notify(f"Unknown command /{name}. Type /help for the list (//text sends '/text').",
                        severity="warning", markup=False)
            return
        if name in MODIFIER_COMMANDS or name == "use":
            line = f"/{name} {arg}"
            override = MODIFIER_COMMANDS.get(name)
            if override is None:  # /use NAME [TEXT]
                modifier, _, arg = arg.partition(" ")
                if not modifier:
                    self.notify("Say which modifier: /use NAME [TEXT]", severity="warning")
                    return
                override = {"none": NONE, "base": NONE}.get(modifier, modifier)
            if arg.strip():
                if not await self.send(arg.strip(), override) and not self.prompt.value:
                    # Not sent: give the line back to edit, cursor at its end.
                    self.prompt.value = line
                    self.prompt.cursor_position = len(self.prompt.value)
            else:
                self.set_mode(override)
            return
        simple: dict[str, Callable[[], Any]] = {
            "new": self.action_new_conversation,
            "delete": self.action_delete_conversation,
            "regen": self.action_regenerate,
            "why": self.action_toggle_reasons,
            "help": self.app.action_help,
            "quit": self.app.action_quit,
        }
        if name in simple:
            result = simple[name]()
            if inspect.isawaitable(result):
                await result
        elif name == "rename":
            self.rename(arg) if arg else self.action_rename()
        elif name == "system":
            self.set_system_prompt(arg) if arg else self.action_system_prompt()
        elif name == "search":
            self.action_search(arg)
        elif name == "copy":
            self.action_copy_code() if arg.lower() == "code" else self.action_copy_reply()
        elif name == "export":
            self.export(arg)
        else:  # pragma: no cover - a test runs every command in the table
            raise AssertionError(f"command /{name} is in the table but not wired")
