"""Slash commands typed in the prompt: parsed here, run by the chat screen.

The table is data so that the help screen lists exactly what the parser accepts.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..runtime.assistant import AUTO, NONE


@dataclass(frozen=True)
class SlashCommand:
    name: str
    args: str
    help: str


COMMANDS: tuple[SlashCommand, ...] = (
    # Choosing who answers: with TEXT for this message only, alone from now on.
    SlashCommand("code", "[TEXT]", "the code modifier answers (TEXT: this message only)"),
    SlashCommand("reason", "[TEXT]", "the reasoning modifier answers"),
    SlashCommand("base", "[TEXT]", "the base model alone answers, no modifier"),
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

# Command name -> the override it means (``auto``, ``none`` or a modifier name).
MODIFIER_COMMANDS: dict[str, str] = {
    "code": "code",        # the demo recipe's modifier names
    "reason": "reasoning",
    "base": NONE,
    "auto": AUTO,
}


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
    return {AUTO: "auto", NONE: "base"}.get(override, override)
