"""Running a slash command typed in the prompt: which screen action each command name means.

``commands.py`` owns the table and the parser; this module maps a parsed
command to what the chat screen does. The screen is reached only through
:class:`CommandHost`, so this module never imports it.
"""

from __future__ import annotations

import inspect
from typing import Any, Awaitable, Callable, Protocol

from textual.widgets import Input

from ..modifier_names import canonical
from ..runtime.assistant_handle import AssistantHandle
from .commands import COMMAND_NAMES, choice_command, unknown_command
from .conversation_actions import ConversationActions


class CommandHost(Protocol):
    """The part of the chat screen that commands drive."""

    conversations: ConversationActions
    model: AssistantHandle

    @property
    def prompt(self) -> Input: ...
    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = True) -> None: ...
    def send(self, text: str, override: str) -> Awaitable[bool]: ...
    def set_mode(self, override: str) -> None: ...
    def run_action(self, action: str) -> Awaitable[None]: ...
    def action_new_conversation(self) -> Any: ...
    def action_regenerate(self) -> Any: ...
    def action_toggle_reasons(self) -> None: ...
    def action_copy_reply(self) -> None: ...
    def action_copy_code(self) -> None: ...


async def run_command(screen: CommandHost, name: str, arg: str) -> None:
    override = choice_command(name, screen.model.modifiers)
    if name not in COMMAND_NAMES and override is None:
        screen.notify(unknown_command(name, screen.model.modifiers), severity="warning", markup=False)
        return
    if override is not None or name == "use":
        line = f"/{name} {arg}"
        if override is None:  # /use NAME [TEXT]
            modifier, _, arg = arg.partition(" ")
            if not modifier:
                screen.notify("Say which modifier: /use NAME [TEXT]", severity="warning")
                return
            override = canonical(modifier)
        if arg.strip():
            if not await screen.send(arg.strip(), override) and not screen.prompt.value:
                # Not sent: give the line back to edit, cursor at its end.
                screen.prompt.value = line
                screen.prompt.cursor_position = len(screen.prompt.value)
        else:
            screen.set_mode(override)
        return
    conversations = screen.conversations
    simple: dict[str, Callable[[], Any]] = {
        "new": screen.action_new_conversation,
        "delete": conversations.ask_delete,
        "regen": screen.action_regenerate,
        "why": screen.action_toggle_reasons,
        "help": lambda: screen.run_action("app.help"),
        "quit": lambda: screen.run_action("app.quit"),
    }
    if name in simple:
        result = simple[name]()
        if inspect.isawaitable(result):
            await result
    elif name == "rename":
        conversations.rename(arg) if arg else conversations.ask_rename()
    elif name == "system":
        conversations.set_system_prompt(arg) if arg else conversations.ask_system_prompt()
    elif name == "search":
        conversations.search(arg)
    elif name == "copy":
        screen.action_copy_code() if arg.lower() == "code" else screen.action_copy_reply()
    elif name == "export":
        conversations.export(arg)
    else:  # pragma: no cover - a test runs every command in the table
        raise AssertionError(f"command /{name} is in the table but not wired")
