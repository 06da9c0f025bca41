"""Real processes on a real history file: killed mid-reply, and two at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edge_assistant.runtime.assistant import Assistant
from edge_assistant.runtime.assistant_handle import AssistantHandle
from edge_assistant.runtime.history import History
from edge_assistant.settings import Settings
from edge_assistant.tui.app import make_app
from edge_assistant.tui.widgets import ConversationList, UserTurn
from tests.support.fakes import ScriptedEngine

from .chat_process import script
from .conftest import last_reply, reply_done, send

REPO = Path(__file__).resolve().parents[2]


def start_chat_process(db: Path, message: str, tokens: int, delay_s: float) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.tui.chat_process", str(db), message, "--tokens", str(tokens),
         "--delay", str(delay_s)],
        cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_line(proc: subprocess.Popen[str], expected: str) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != expected:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"chat process said {line!r} instead of {expected!r}; stderr:\n{err[-3000:]}")


async def test_a_process_killed_mid_reply_leaves_the_question_and_the_partial_reply(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite3"
    full = "".join(script(3000))
    proc = start_chat_process(db, "tell me a very long story", tokens=3000, delay_s=0.01)
    try:
        read_line(proc, "streaming")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL

    with History(db) as history:
        assert history.integrity_check() == "ok"
        conversations = history.conversations()
        assert [c.title for c in conversations] == ["tell me a very long story"]
        stored = history.messages(conversations[0].id)
        assert [(m.role, m.status) for m in stored] == [("user", "complete"), ("assistant", "partial")]
        assert stored[0].content == "tell me a very long story"
        partial = stored[1].content
        assert partial and full.startswith(partial) and len(partial) < len(full)

        app = make_app(Settings(), AssistantHandle.loaded(Assistant(ScriptedEngine(), None, "reopened")), history)
        async with app.run_test() as pilot:
            await pilot.pause()
            turns = [str(t.render()) for t in app.chat_screen.transcript.query(UserTurn)]
            assert turns == ["tell me a very long story"]
            reply = last_reply(app)
            assert reply is not None and reply.text == partial
            assert "unfinished" in str(reply.query_one(".reply-meta").render())


async def test_two_instances_on_one_history_both_work_and_see_each_other(
        tmp_path: Path, settings: Settings) -> None:
    db = tmp_path / "history.sqlite3"
    other = start_chat_process(db, "from the other window", tokens=150, delay_s=0.01)
    try:
        read_line(other, "streaming")
        # The other instance is mid-reply, saving every few tokens; this one chats at the same time.
        with History(db) as history:
            app = make_app(settings, AssistantHandle.loaded(Assistant(ScriptedEngine(["here", " too"]), None, "this")),
                           history)
            async with app.run_test() as pilot:
                # It opens on the most recent conversation: the one the other window is writing.
                assert app.chat_screen.conversation_id == history.conversations()[0].id
                await pilot.press("ctrl+n")
                await send(pilot, "from this window")
                reply = await reply_done(pilot)
                assert reply.text == "here too" and reply.status == "complete"
                titles = [str(o.prompt) for o in app.chat_screen.query_one(ConversationList).options]
                assert sorted(titles) == ["from the other window", "from this window"]
        read_line(other, "done")
    finally:
        if other.poll() is None and other.stdin is not None:
            other.stdin.write("\n")
            other.stdin.flush()
        other.wait(30)
    assert other.returncode == 0

    with History(db) as history:
        assert history.integrity_check() == "ok"
        by_title = {c.title: history.messages(c.id) for c in history.conversations()}
        assert set(by_title) == {"from the other window", "from this window"}
        for messages in by_title.values():
            assert [(m.role, m.status) for m in messages] == [("user", "complete"), ("assistant", "complete")]
        assert by_title["from the other window"][1].content == "".join(script(150))
