"""The chat screen's widgets: turns, replies, the status line, the conversation list."""

from __future__ import annotations

from rich.markdown import Markdown as RichMarkdown
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import OptionList, ProgressBar, Static
from textual.widgets.option_list import Option

from ..modifier_names import shown
from ..router.decision import RouteDecision
from ..runtime.danger import danger_warning, find_dangers
from ..runtime.history import Conversation, StoredMessage
from ..runtime.kvstate import reuse_text

_STATUS_LABEL = {
    "partial": "unfinished (the app ended mid-reply, or another window is still writing it)",
    "stopped": "stopped",
    "error": "failed",
}


class UserTurn(Static):
    """What the user typed, shown verbatim (no markup, no Markdown)."""

    def __init__(self, text: str, message_id: int | None = None) -> None:
        super().__init__(text, markup=False, classes="user-turn")
        self.message_id = message_id
        self.border_title = "You"


class ReplyView(Vertical):
    """One assistant reply: Markdown with highlighted code, and who answered.

    The body is a single ``Static`` holding Rich's Markdown (code highlighted by
    Pygments), re-rendered whole on each update. Measured here, that costs the
    same per update as Textual's ``Markdown`` widget with incremental
    ``append`` (which builds a widget per block and so is far slower to mount
    for stored replies); one renderer keeps a streamed reply looking exactly
    like the same reply reopened later. Updates come at most ten times a
    second (see ``ChatTurn.progress_every_s``), coalesced.
    """

    def __init__(self, reply_id: int | None, *, modifier: str | None = None, confidence: float | None = None,
                 reason: str | None = None, text: str = "", status: str = "partial",
                 tokens: int | None = None, tok_s: float | None = None, error: str | None = None,
                 reuse: str = "") -> None:
        super().__init__(classes="reply")
        self.reply_id = reply_id
        self.modifier = modifier
        self.confidence = confidence
        self.reason = reason
        self.text = text
        self.status = status
        self.tokens = tokens
        self.tok_s = tok_s
        self.error = error
        self.reuse = reuse    # how the prompt was read: a kept state reused, and how many tokens were read
        self._shown = text
        self.streaming = False

    @classmethod
    def from_stored(cls, message: StoredMessage) -> "ReplyView":
        return cls(message.id, modifier=message.modifier, confidence=message.route_confidence,
                   reason=message.route_reason, text=message.content, status=message.status,
                   tokens=message.completion_tokens, tok_s=message.decode_tok_s, error=message.error,
                   reuse=_reuse(message))

    def compose(self) -> ComposeResult:
        yield Static(self._meta_text(), classes="reply-meta")
        yield Static(self._reason_text(), classes="reply-reason", markup=False)
        yield _settled_body(self.text)
        warning = Static("", classes="reply-warning", markup=False)
        warning.display = False
        yield warning

    def on_mount(self) -> None:
        self.border_title = shown(self.modifier)
        self._apply_status_class()
        self.call_after_refresh(self._show_dangers)

    def _show_dangers(self) -> None:
        """A warning under a reply that contains a destructive command (runtime/danger.py)."""
        found = self.query(".reply-warning").results(Static)
        warning = next(found, None)
        if warning is None:   # called after a refresh that came when this view was already gone
            return
        dangers = [] if self.streaming else find_dangers(self.text)
        warning.update(f"⚠ {danger_warning(dangers)}" if dangers else "")
        warning.display = bool(dangers)
        self.set_class(bool(dangers), "-dangerous")

    def _meta_text(self) -> Text:
        parts = [shown(self.modifier)]
        if self.confidence is not None:
            parts.append(f"{self.confidence:.0%} sure")
        if self.tokens:
            parts.append(f"{self.tokens} tokens")
        if self.tok_s:
            parts.append(f"{self.tok_s:.1f} tok/s")
        text = Text(" · ".join(parts), style="dim")
        if self.streaming:
            text.append("  generating… (Esc stops)", style="italic")
        elif self.status in _STATUS_LABEL:
            label = _STATUS_LABEL[self.status]
            if self.status == "error" and self.error:
                label = f"failed: {self.error}"
            text.append(f"  ■ {label}", style="bold")
        return text

    def _reason_text(self) -> str:
        text = f"why: {self.reason}" if self.reason else "why: not recorded"
        return f"{text} · {self.reuse}" if self.reuse else text

    def _apply_status_class(self) -> None:
        for status in ("partial", "stopped", "error", "complete"):
            self.set_class(self.status == status and not self.streaming, f"-{status}")

    def _refresh_meta(self, layout: bool = True) -> None:
        self.query_one(".reply-meta", Static).update(self._meta_text(), layout=layout)
        self.query_one(".reply-reason", Static).update(self._reason_text(), layout=layout)
        self.border_title = shown(self.modifier)
        self._apply_status_class()

    def start(self, decision: RouteDecision | None) -> None:
        self.streaming = True
        if decision is not None:
            self.modifier, self.confidence, self.reason = decision.modifier, decision.confidence, decision.reason
        self._refresh_meta()

    async def show_text(self, text: str, tokens: int, tok_s: float) -> None:
        self.tokens, self.tok_s = tokens, tok_s
        self.query_one(".reply-body", Static).update(_markdown(text))
        self._shown = self.text = text
        self._refresh_meta(layout=False)  # same one line: the body's update already lays out

    async def finish(self, message: StoredMessage) -> None:
        self.streaming = False
        self.text, self.status, self.error = message.content, message.status, message.error
        self.tokens = message.completion_tokens or self.tokens
        self.tok_s = message.decode_tok_s or self.tok_s
        self.reuse = _reuse(message)
        if message.content != self._shown:
            self.query_one(".reply-body", Static).update(_markdown(message.content))
        self._shown = message.content
        self._refresh_meta()
        self._show_dangers()


def _reuse(message: StoredMessage) -> str:
    if message.read_tokens is None or not message.prompt_tokens:
        return ""   # an older reply, or an engine that does not say
    return reuse_text(message.kv_state or "", message.prompt_tokens, message.read_tokens)


def _markdown(text: str) -> RichMarkdown:
    return RichMarkdown(text, code_theme="monokai", hyperlinks=False)


def _settled_body(text: str) -> Static:
    return Static(_markdown(text), classes="reply-body")


WELCOME_TEXT = """\
Welcome to edge-assistant: everything runs on this computer, offline.

• Modifiers are small add-ons (LoRA adapters) that make the base model better at one kind of task, \
such as code, reasoning or shell automation.
• The router reads each message and picks the modifier that answers it, or the base model alone. \
Each reply says who answered; Ctrl+T shows why. Ctrl+O lets you choose yourself.
• The demo model (SmolLM2-135M, used when no bigger bundle is installed) has only 135M parameters: \
its answers are often wrong. Check them, and never run a command you have not read.

This message is shown once. F1 lists the keys; /help lists the commands."""


class Welcome(Static):
    """Shown once, on the very first run: what modifiers and the router are, and how far to trust the demo."""

    def __init__(self) -> None:
        super().__init__(WELCOME_TEXT, markup=False, id="welcome")
        self.border_title = "Welcome"


class StatusLine(Static):
    """Bundle, the modifier choice, who answered last (and how sure), tokens/s, state."""

    bundle: reactive[str] = reactive("")
    mode: reactive[str] = reactive("auto")
    answered_by: reactive[str] = reactive("")
    tok_s: reactive[float] = reactive(0.0)
    state: reactive[str] = reactive("")

    def render(self) -> Text:
        text = Text()
        text.append(f" {self.bundle or '…'} ", style="bold reverse")
        text.append(f"  mode: {self.mode}")
        if self.answered_by:
            text.append(f"  │ last reply: {self.answered_by}")
        if self.tok_s:
            text.append(f"  │ {self.tok_s:.1f} tok/s")
        if self.state:
            text.append(f"  │ {self.state}", style="italic")
        return text


class LoadPanel(Vertical):
    """Shown while the model loads (first-run unpack, then llama.cpp)."""

    def compose(self) -> ComposeResult:
        yield Static("Loading the model…", id="load-stage")
        yield ProgressBar(total=None, show_eta=False, id="load-bar")

    def show(self, stage: str, fraction: float | None) -> None:
        self.query_one("#load-stage", Static).update(stage)
        bar = self.query_one(ProgressBar)
        if fraction is None:
            bar.update(total=None)
        else:
            bar.update(total=100, progress=max(0.0, min(fraction, 1.0)) * 100)


class ConversationList(OptionList):
    """The conversations, most recent first; the option id is the conversation id."""

    def show(self, conversations: list[Conversation], current: int | None) -> None:
        width = 23  # the sidebar's inner width: one line per conversation
        self.set_options([Option(c.title if len(c.title) <= width else c.title[: width - 1] + "…", id=str(c.id))
                          for c in conversations])
        if current is not None:
            for index, conversation in enumerate(conversations):
                if conversation.id == current:
                    self.highlighted = index
                    break
