"""The main screen: conversations on the left, the transcript, the prompt, the status line.

Generation runs on a thread worker (:class:`~edge_assistant.runtime.chat_turn.ChatTurn`);
it reports through typed messages (``messages.py``) and this screen changes
widgets only in their handlers. Every ``EdgeAssistantError`` raised by an action
becomes a notification (``surfaces_errors``), never a crash.

The screen is given the settings, the history and a handle on the model (which
may still be loading); it owns sending and stopping a turn, which conversation is
open, and who answers. The rest lives next to it, and none of it imports the
screen: ``reply_stream.py`` (drawing a reply as it streams), ``transcript.py``
(the views of the messages), ``conversation_actions.py`` (rename, system prompt,
delete, search, export), ``clipboard.py`` (copying) and ``command_dispatch.py``
(slash commands).
"""

from __future__ import annotations

import asyncio
import threading

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, OptionList
from textual.worker import Worker, WorkerState

from ..errors import EdgeAssistantError
from ..router.decision import RouteDecision
from ..modifier_names import AUTO, is_choice, unknown_modifier
from ..runtime.assistant_handle import AssistantHandle
from ..runtime.chat_turn import ChatTurn, TurnRequest
from ..runtime.firstrun import WELCOME, first_time
from ..sampling import SamplingParams
from ..runtime.history import History, StoredMessage
from ..settings import Settings
from . import clipboard
from .command_dispatch import run_command
from .commands import describe_mode, parse
from .conversation_actions import ConversationActions
from .error_notice import surfaces_errors
from .messages import (AssistantReady, LoadFailed, LoadNotice, LoadProgress, ReplyFinished, ReplyProgress,
                       ReplyStarted, TurnFailed, UserCommitted)
from .reply_stream import ReplyStream
from .screens import ModifierPicker
from .transcript import Transcript
from .widgets import ConversationList, LoadPanel, ReplyView, StatusLine, UserTurn, Welcome


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


class ChatScreen(Screen[None]):
    BINDINGS = CHAT_BINDINGS

    def __init__(self, settings: Settings, history: History, model: AssistantHandle) -> None:
        super().__init__()
        self.settings = settings
        self.history = history
        self.model = model
        self.conversations = ConversationActions(self, history)
        self.conversation_id: int | None = None
        self.turn: ChatTurn | None = None
        self._turn_done = threading.Event()
        self._turn_done.set()
        self.stream = ReplyStream(self, self._show_speed)
        self.mode = settings.modifier
        self.pending_system_prompt = settings.system_prompt

    # -- layout -------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            sidebar = ConversationList(id="sidebar")
            sidebar.border_title = "Conversations"
            yield sidebar
            with Vertical(id="chat"):
                yield Transcript(id="transcript")
                yield LoadPanel(id="load-panel")
                yield Input(placeholder="Ask anything  ·  /help lists commands  ·  F1 keys", id="prompt")
        yield StatusLine(id="status")
        yield Footer()

    @property
    def transcript(self) -> Transcript:
        return self.query_one("#transcript", Transcript)

    @property
    def status(self) -> StatusLine:
        return self.query_one(StatusLine)

    @property
    def prompt(self) -> Input:
        return self.query_one("#prompt", Input)

    async def on_mount(self) -> None:
        status = self.status
        status.mode = describe_mode(self.mode)
        assistant = self.model.assistant
        if assistant is not None:
            status.bundle = assistant.bundle_name or "model"
            self.query_one(LoadPanel).display = False
        else:
            status.bundle = self.settings.bundle or "loading…"
            status.state = "loading the model…"
        self.transcript.anchor()
        conversations = self.history.conversations()
        if conversations:
            await self.open_conversation(conversations[0].id)
        else:
            await self.new_conversation()
            # The very first run: an empty history and no welcome shown before.
            if first_time(WELCOME):
                await self.transcript.mount(Welcome())
        self.prompt.focus()

    def refresh_sidebar(self) -> None:
        self.query_one(ConversationList).show(self.history.conversations(), self.conversation_id)

    # -- loading ------------------------------------------------------------------

    def on_load_progress(self, event: LoadProgress) -> None:
        self.query_one(LoadPanel).show(event.stage, event.fraction)
        self.status.state = event.stage

    def on_assistant_ready(self, event: AssistantReady) -> None:
        self.query_one(LoadPanel).display = False
        self.status.bundle = event.bundle
        self.status.state = "generating…" if self.turn is not None else ""
        if not is_choice(self.mode, event.modifiers):
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
            await run_command(self, parsed.command, parsed.text)
            return
        if not parsed.text:
            return
        if await self.send(parsed.text, self.mode):
            self.prompt.clear()

    def _unknown_modifier(self, name: str, known: tuple[str, ...] | list[str]) -> None:
        self.notify(str(unknown_modifier(name, known)), severity="warning", title="Unknown modifier", markup=False)

    def _check_override(self, override: str) -> bool:
        """False (with a notification) when the loaded bundle lacks the modifier."""
        modifiers = self.model.modifiers
        if modifiers is None or is_choice(override, modifiers):
            return True
        self._unknown_modifier(override, modifiers)
        return False

    def busy(self) -> bool:
        if self.turn is not None:
            self.notify("Still answering: press Esc to stop it first.", severity="warning")
            return True
        return False

    async def send(self, text: str, override: str) -> bool:
        """Send ``text`` (answered as ``override`` says); False if it was not sent."""
        if self.busy() or not self._check_override(override):
            return False
        if self.conversation_id is None:
            conversation = self.history.create_conversation(text, self.pending_system_prompt)
            self.conversation_id = conversation.id
            self.refresh_sidebar()
        await self.transcript.mount(UserTurn(text))
        self.transcript.anchor()
        self._start_turn(TurnRequest(self.conversation_id, text, override, self._sampling()))
        return True

    def _sampling(self) -> SamplingParams:
        return SamplingParams.from_settings(self.settings)

    def _start_turn(self, request: TurnRequest) -> None:
        self.turn = ChatTurn(self.history, self.model, request, _PostingObserver(self))
        self._turn_done.clear()
        self.status.state = "generating…" if self.model.ready else "waiting for the model…"
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
        self.refresh_sidebar()  # the conversation moved to the top

    async def on_reply_started(self, event: ReplyStarted) -> None:
        view = ReplyView(event.reply_id)
        self.stream.add(view, event.reply_id)
        await self.transcript.mount(view)
        view.start(event.decision)
        self._show_route(event.decision.modifier if event.decision else None,
                         event.decision.confidence if event.decision else None)
        if self.status.state == "waiting for the model…":
            self.status.state = "generating…"

    async def on_reply_progress(self, event: ReplyProgress) -> None:
        await self.stream.progress(event)

    def _show_speed(self, tok_s: float) -> None:
        self.status.tok_s = tok_s

    async def on_reply_finished(self, event: ReplyFinished) -> None:
        view = self.stream.finish(event.message.id)
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
        if self.conversation_id != conversation_id and self.busy():
            return
        conversation = self.history.conversation(conversation_id)
        stored = self.history.messages(conversation_id)
        self.conversation_id = conversation.id
        self.pending_system_prompt = conversation.system_prompt
        await self.transcript.show(stored)
        last = next((m for m in reversed(stored) if m.role == "assistant"), None)
        if last is not None:
            self._show_route(last.modifier, last.route_confidence)
            self.status.tok_s = last.decode_tok_s or 0.0
        else:
            self.status.answered_by, self.status.tok_s = "", 0.0
        self.sub_title = conversation.title
        self.refresh_sidebar()

    @on(Button.Pressed, "#show-earlier")
    @surfaces_errors
    async def show_earlier(self, event: Button.Pressed) -> None:
        assert self.conversation_id is not None
        await self.transcript.show_earlier(self.history.messages(self.conversation_id), event.button)

    async def new_conversation(self) -> None:
        self.conversation_id = None
        self.pending_system_prompt = self.settings.system_prompt
        await self.transcript.remove_children()
        self.status.answered_by, self.status.tok_s = "", 0.0
        self.sub_title = "New conversation"
        self.refresh_sidebar()
        self.prompt.focus()

    @on(OptionList.OptionSelected, "#sidebar")
    async def conversation_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            await self.open_conversation(int(event.option.id))
            self.prompt.focus()

    @surfaces_errors
    async def action_new_conversation(self) -> None:
        if not self.busy():
            await self.new_conversation()

    def require_conversation(self, what: str) -> int | None:
        if self.conversation_id is None:
            self.notify(f"Nothing to {what} yet: this conversation has no messages.", severity="warning")
        return self.conversation_id

    def action_rename(self) -> None:
        self.conversations.ask_rename()

    def action_system_prompt(self) -> None:
        self.conversations.ask_system_prompt()

    def action_delete_conversation(self) -> None:
        self.conversations.ask_delete()

    def action_search(self) -> None:
        self.conversations.search()

    def action_export(self) -> None:
        self.conversations.export()

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
        modifiers = self.model.modifiers
        if modifiers is None:
            self.notify("The model is still loading; the modifiers are not known yet.", severity="warning")
            return
        self.app.push_screen(ModifierPicker(modifiers, self.mode),
                             lambda choice: self.set_mode(choice) if choice is not None else None)

    # -- replies ------------------------------------------------------------------------

    @surfaces_errors
    async def action_regenerate(self) -> None:
        if self.busy() or self.require_conversation("regenerate") is None:
            return
        assert self.conversation_id is not None
        if not self.transcript.has_user_turn():
            self.notify("Nothing to regenerate yet.", severity="warning")
            return
        # The turn deletes the trailing reply rows; here only their views go.
        await self.transcript.remove_trailing_replies()
        self._start_turn(TurnRequest(self.conversation_id, None, self.mode, self._sampling()))

    def _last_reply_text(self) -> str:
        reply = self.transcript.last_reply()
        return reply.text if reply is not None else ""

    def action_copy_reply(self) -> None:
        clipboard.copy_reply(self.app, self._last_reply_text())

    def action_copy_code(self) -> None:
        clipboard.copy_code(self.app, self._last_reply_text())
