"""Snapshots of the main screens (pytest-textual-snapshot; `--snapshot-update` after a deliberate change).

The history is filled directly with fixed values (speeds, confidences) so the
pictures do not depend on timing.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from edge_assistant.router.decision import RouteDecision
from edge_assistant.runtime.assistant import Assistant
from edge_assistant.runtime.assistant_handle import AssistantHandle, LoadReport
from edge_assistant.runtime.generation import GenerationResult
from edge_assistant.runtime.history import History
from edge_assistant.settings import Settings
from edge_assistant.tui.app import ChatApp, make_app
from tests.support.fakes import ScriptedEngine


SIZE = (100, 32)


@pytest.fixture(autouse=True)
def steady_cursor(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a focused Input's cursor shown: its 0.5 s blink made a picture depend on the machine's load."""
    def shown(self: Input) -> None:
        self._cursor_visible = True

    monkeypatch.setattr(Input, "_toggle_cursor", shown)

CODE_ANSWER = """Use slicing with a step of -1:

```python
def reverse(text: str) -> str:
    return text[::-1]
```

It works for any string, including an empty one."""


@pytest.fixture
def filled_history(tmp_path: Path) -> Iterator[History]:
    with History(tmp_path / "history.sqlite3") as h:
        older = h.create_conversation("Plan a trip to Lisbon")
        h.add_user_message(older.id, "Plan three days in Lisbon")
        reply = h.begin_reply(older.id, RouteDecision(None, 0.64, "no strong keywords; similarity 0.31"))
        h.finish_reply(reply, "Day 1: Alfama and the castle.", "complete")

        chat = h.create_conversation("Reverse a string in Python")
        h.add_user_message(chat.id, "How do I reverse a string in Python?")
        reply = h.begin_reply(chat.id, RouteDecision("code", 0.87, "keywords 'python', 'string'; similarity 0.72"))
        h.finish_reply(reply, CODE_ANSWER, "complete",
                       GenerationResult(prompt_tokens=31, completion_tokens=42, decode_tok_s=38.5))
        h.add_user_message(chat.id, "Now explain why it works, step by step")
        reply = h.begin_reply(chat.id, RouteDecision("reasoning", 0.71, "keywords 'why', 'step by step'"))
        h.finish_reply(reply, "A slice `[start:stop:step]` with a negative step walks", "stopped",
                       GenerationResult(completion_tokens=12, decode_tok_s=36.1))
        yield h


def chat_app(history: History) -> ChatApp:
    engine = ScriptedEngine(modifiers=("code", "reasoning", "automation"))
    return make_app(Settings(), AssistantHandle.loaded(Assistant(engine, None, "demo-bundle")), history)


def test_main_screen_with_a_code_reply_and_a_stopped_reply(snap_compare, filled_history: History) -> None:
    assert snap_compare(chat_app(filled_history), terminal_size=SIZE)


def test_main_screen_with_the_reasons_for_each_modifier_shown(snap_compare, filled_history: History) -> None:
    assert snap_compare(chat_app(filled_history), press=["ctrl+t"], terminal_size=SIZE)


def test_help_screen(snap_compare, filled_history: History) -> None:
    assert snap_compare(chat_app(filled_history), press=["f1"], terminal_size=(100, 48))


def test_search_screen_with_results(snap_compare, filled_history: History) -> None:
    assert snap_compare(chat_app(filled_history), press=["ctrl+f", *"string"], terminal_size=SIZE)


def test_modifier_picker(snap_compare, filled_history: History) -> None:
    assert snap_compare(chat_app(filled_history), press=["ctrl+o"], terminal_size=SIZE)


def test_loading_screen_shows_unpack_progress(snap_compare, tmp_path: Path) -> None:
    release = threading.Event()

    def loader(report: LoadReport) -> Assistant:
        report.stage("Unpacking demo-bundle (first run only)", 0.4)
        release.wait(30)
        return Assistant(ScriptedEngine(), None, "demo-bundle")

    async def until_progress_shows(pilot: Pilot) -> None:
        app = pilot.app
        assert isinstance(app, ChatApp)
        while "Unpacking" not in app.chat_screen.status.state:
            await pilot.pause(0.02)

    with History(tmp_path / "history.sqlite3") as history:
        try:
            app = make_app(Settings(), AssistantHandle.loading(loader), history)
            assert snap_compare(app, run_before=until_progress_shows, terminal_size=SIZE)
        finally:
            release.set()
