"""Slash commands typed in the prompt: parsed here, run by the chat screen.

The table is data so that the help screen lists exactly what the parser accepts.
Each modifier of the loaded bundle gets its own ``/NAME`` shortcut (unless NAME is
a built-in command: then ``/use NAME``), derived here from the bundle's names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..modifier_names import AUTO, BASE, canonical


@dataclass(frozen=True)
class SlashCommand:
    name: str
    args: str
    help: str


COMMANDS: tuple[SlashCommand, ...] = (
    # Choosing who answers: with TEXT for this message only, alone from now on. The
    # bundle's own /NAME shortcuts come first (``modifier_commands``).
    SlashCommand(BASE, "[TEXT]", "the base model alone answers, no modifier"),
    SlashCommand("auto", "[TEXT]", "the router decides (the default)"),
    SlashCommand("use", "NAME [TEXT]", "any modifier of this bundle by name"),
    # Conversations.
    SlashCommand("new", "", "start a new conversation"),
    SlashCommand("rename", "[TITLE]", "rename this conversation"),
    SlashCommand("delete", "", "delete this conversation (asks first)"),
    SlashCommand("system", "[PROMPT]", "show or set this conversation's system prompt"),
    SlashCommand("search", "[WORDS]", "search all conversations"),
    # Replies.
    SlashCommand("regen", "", "regenerate the last reply"),
    SlashCommand("copy", "[code]", "copy the last reply, or its last code block"),
    SlashCommand("export", "[FOLDER]", "export this conversation to Markdown"),
    SlashCommand("why", "", "show or hide why each modifier was chosen"),
    SlashCommand("help", "", "list keys and commands"),
    SlashCommand("quit", "", "leave the app"),
)

COMMAND_NAMES = frozenset(c.name for c in COMMANDS)

# Shorter spellings of a modifier's shortcut, offered when the bundle has that modifier:
# /reason was the demo's shortcut for `reasoning` before shortcuts came from the bundle.
SHORTCUT_ALIASES: dict[str, str] = {"reason": "reasoning"}
_THIS_MESSAGE_ONLY = " (TEXT: this message only)"


def _shortcuts(modifiers: Sequence[str]) -> dict[str, str]:
    """Command name -> the modifier it chooses: each modifier's own name, then the aliases."""
    own = {name: name for name in modifiers if name not in COMMAND_NAMES}
    aliases = {alias: name for alias, name in SHORTCUT_ALIASES.items()
               if name in modifiers and alias not in COMMAND_NAMES and alias not in modifiers}
    return own | aliases


def modifier_commands(modifiers: Sequence[str]) -> tuple[SlashCommand, ...]:
    """A ``/NAME [TEXT]`` shortcut per modifier of the bundle (and its aliases), for the help screen."""
    return tuple(SlashCommand(command, "[TEXT]", f"the {name} modifier answers" if command == name
                              else f"the {name} modifier answers (short for /{name})")
                 for command, name in _shortcuts(modifiers).items())


def commands_for(modifiers: Sequence[str] | None) -> tuple[SlashCommand, ...]:
    """Every command this bundle accepts, its shortcuts first (only the built-ins while it loads)."""
    listed = modifier_commands(modifiers or ()) + COMMANDS
    first = listed[0]
    return (SlashCommand(first.name, first.args, first.help + _THIS_MESSAGE_ONLY),) + listed[1:]


def choice_command(name: str, modifiers: Sequence[str] | None) -> str | None:
    """The choice (``auto``, ``base`` or a modifier) the command ``/name`` makes; None for other commands."""
    if name in (AUTO, BASE):
        return name
    return _shortcuts(modifiers or ()).get(name)


def unknown_command(name: str, modifiers: Sequence[str] | None) -> str:
    """What to say for ``/name`` that is no command (maybe a shortcut the loading bundle will have)."""
    loading = " While the model loads, choose a modifier with /use NAME." if modifiers is None else ""
    return f"Unknown command /{name}. Type /help for the list (//text sends '/text').{loading}"


@dataclass(frozen=True)
class Parsed:
    """A line from the prompt: either a message to send or a command to run."""

    command: str | None    # None: send ``text`` as a message
    text: str              # the message, or the command's argument (may be empty)


def parse(line: str) -> Parsed:
    """``/name args`` is a command; ``//text`` sends ``/text``; anything else is a message.

    Unknown command names are returned as commands too, so the screen can say so
    instead of sending a typo to the model.
    """
    stripped = line.strip()
    if stripped.startswith("//"):
        return Parsed(None, stripped[1:])
    if not stripped.startswith("/") or stripped == "/":
        return Parsed(None, stripped)
    name, _, rest = stripped[1:].partition(" ")
    return Parsed(name.lower(), rest.strip())


def describe_mode(override: str) -> str:
    """How the status line names a choice of modifier."""
    return canonical(override)
