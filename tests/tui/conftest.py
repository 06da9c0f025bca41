"""Fixtures for the chat app: a history in the test's folder and an app built by the
same factory the CLI uses, around a scripted engine."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
from textual.pilot import Pilot

from edge_assistant.runtime.assistant import Assistant
from edge_assistant.runtime.assistant_handle import AssistantHandle
from edge_assistant.runtime.history import History
from edge_assistant.settings import Settings
from edge_assistant.tui.app import ChatApp, make_app
from edge_assistant.tui.widgets import ReplyView
from tests.support.fakes import FixedRouter, ScriptedEngine


SYSTEM = "You are a test assistant."


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    with History(tmp_path / "history.sqlite3") as h:
        yield h


@pytest.fixture
def settings() -> Settings:
    return Settings(system_prompt=SYSTEM, temperature=0.0, max_tokens=256)


@pytest.fixture
def build_app(history: History, settings: Settings) -> Callable[..., ChatApp]:
    def build(engine: ScriptedEngine | None = None, router: FixedRouter | None = None,
              bundle: str = "test-bundle", **setting_overrides: object) -> ChatApp:
        chosen = dataclasses.replace(settings, **setting_overrides)
        return make_app(chosen, AssistantHandle.loaded(Assistant(engine or ScriptedEngine(), router, bundle)), history)
    return build


async def wait_until(pilot: Pilot, predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Let the app run until ``predicate()`` holds; fail with a clear message after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {predicate.__doc__ or predicate}")
        await pilot.pause(0.02)


async def send(pilot: Pilot, text: str) -> None:
    """Type ``text`` into the prompt and press Enter."""
    app = pilot.app
    assert isinstance(app, ChatApp)
    app.chat_screen.prompt.value = text
    await pilot.press("enter")


def last_reply(app: ChatApp) -> ReplyView | None:
    replies = list(app.chat_screen.transcript.query(ReplyView))
    return replies[-1] if replies else None


async def reply_done(pilot: Pilot, timeout_s: float = 10.0) -> ReplyView:
    """Wait until the newest reply has finished (complete, stopped or failed) and the turn is over."""
    app = pilot.app
    assert isinstance(app, ChatApp)

    def finished() -> bool:
        """the reply to finish"""
        reply = last_reply(app)
        return (app.chat_screen.turn is None and reply is not None and not reply.streaming
                and reply.status in ("complete", "stopped", "error"))

    await wait_until(pilot, finished, timeout_s)
    reply = last_reply(app)
    assert reply is not None
    return reply
