"""Modal screens: help, search, a one-line prompt, a confirmation, the modifier picker."""

from __future__ import annotations

from typing import Iterable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, OptionList, Static
from textual.widgets.option_list import Option, OptionDoesNotExist

from ..modifier_names import AUTO, BASE
from ..runtime.history import History
from .commands import COMMANDS, SlashCommand


class HelpScreen(ModalScreen[None]):
    """Every key and slash command, generated from the binding and command tables."""

    BINDINGS = [Binding("escape,f1,question_mark,q", "dismiss", "Close")]

    def __init__(self, keys: Iterable[tuple[str, str]], commands: Iterable[SlashCommand] = COMMANDS) -> None:
        super().__init__()
        self.keys = list(keys)
        self.commands = list(commands)

    def compose(self) -> ComposeResult:
        table = Text()
        table.append("Keys\n", style="bold underline")
        for key, description in self.keys:
            table.append(f"  {key:<14}", style="bold")
            table.append(f"{description}\n")
        table.append("\nCommands (type them in the prompt)\n", style="bold underline")
        for command in self.commands:
            usage = f"/{command.name} {command.args}".strip()
            table.append(f"  {usage:<22}", style="bold")
            table.append(f"{command.help}\n")
        table.append("\n  //text sends a message that starts with '/'.\n", style="dim")
        with VerticalScroll(id="help-body") as body:
            body.border_title = "Help"
            body.border_subtitle = "Esc closes"
            yield Static(table)


class TextPrompt(ModalScreen[str | None]):
    """Ask for one line of text (a title, a system prompt); Esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, value: str = "", placeholder: str = "") -> None:
        super().__init__()
        self.prompt_title = title
        self.value = value
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog") as dialog:
            dialog.border_title = self.prompt_title
            dialog.border_subtitle = "Enter saves · Esc cancels"
            yield Input(self.value, placeholder=self.placeholder, id="prompt-input")

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class Confirm(ModalScreen[bool]):
    BINDINGS = [Binding("escape,n", "answer(False)", "No"), Binding("y", "answer(True)", "Yes")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog") as dialog:
            dialog.border_title = "Confirm"
            yield Static(self.question, markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Delete (y)", variant="error", id="yes")
                yield Button("Keep (n)", id="no")

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class SearchScreen(ModalScreen[int | None]):
    """Search every conversation as you type; Enter opens the highlighted one."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("down", "focus_results", show=False)]

    def __init__(self, history: History, query: str = "") -> None:
        super().__init__()
        self.history = history
        self.query_text = query

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="search-dialog") as dialog:
            dialog.border_title = "Search conversations"
            dialog.border_subtitle = "Enter opens · Esc closes"
            yield Input(self.query_text, placeholder="words to find", id="search-input")
            yield OptionList(id="search-results")

    def on_mount(self) -> None:
        self._search(self.query_text)

    @on(Input.Changed, "#search-input")
    def changed(self, event: Input.Changed) -> None:
        self._search(event.value)

    def _search(self, query: str) -> None:
        results = self.query_one("#search-results", OptionList)
        hits = self.history.search(query) if query.strip() else []
        options = []
        for index, hit in enumerate(hits):
            label = Text(hit.title, style="bold")
            if hit.message_id is not None:
                label.append(f"  {hit.snippet}", style="dim")
            options.append(Option(label, id=f"{index}:{hit.conversation_id}"))
        results.set_options(options)
        if options:
            results.highlighted = 0

    @on(Input.Submitted, "#search-input")
    def submitted(self) -> None:
        results = self.query_one("#search-results", OptionList)
        option = results.highlighted_option
        self.dismiss(int(option.id.split(":")[1]) if option is not None and option.id else None)

    @on(OptionList.OptionSelected, "#search-results")
    def selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(int(event.option.id.split(":")[1]) if event.option.id else None)

    def action_focus_results(self) -> None:
        self.query_one("#search-results", OptionList).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)


class ModifierPicker(ModalScreen[str | None]):
    """Choose who answers from now on: the router, the base alone, or a modifier."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, modifiers: Iterable[str], current: str) -> None:
        super().__init__()
        self.modifiers = list(modifiers)
        self.current = current

    def compose(self) -> ComposeResult:
        choices = [(AUTO, "auto — the router decides"), (BASE, "base — no modifier")]
        choices += [(name, name) for name in self.modifiers]
        with Vertical(classes="dialog") as dialog:
            dialog.border_title = "Who answers"
            dialog.border_subtitle = "Enter chooses · Esc cancels"
            yield OptionList(*[Option(label, id=value) for value, label in choices], id="modifier-options")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        try:
            options.highlighted = options.get_option_index(self.current)
        except OptionDoesNotExist:  # a mode this bundle lacks: start at auto
            options.highlighted = 0

    @on(OptionList.OptionSelected)
    def selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
