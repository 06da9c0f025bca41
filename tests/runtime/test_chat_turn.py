"""One chat turn against the history, without any UI (runtime/chat_turn.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from edge_assistant.errors import EdgeAssistantError, ModelError, ModifierError
from edge_assistant.router.decision import RouteDecision
from edge_assistant.runtime.assistant import Assistant
from edge_assistant.runtime.assistant_handle import AssistantHandle, LoadReport
from edge_assistant.runtime.chat_turn import ChatTurn, TurnRequest, prompt_messages
from edge_assistant.runtime.generation import Message
from edge_assistant.runtime.history import History, StoredMessage

from tests.support.fakes import FixedRouter, ScriptedEngine


class Recorder:
    """A TurnObserver that keeps what it was told, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def user_committed(self, message: StoredMessage) -> None:
        self.events.append(("user", message.content))

    def reply_started(self, reply_id: int, decision: RouteDecision | None) -> None:
        self.events.append(("started", decision.modifier if decision else None))

    def reply_progress(self, reply_id: int, text: str, tokens: int, tok_s: float) -> None:
        self.events.append(("progress", text))

    def reply_finished(self, message: StoredMessage) -> None:
        self.events.append(("finished", message.status))


def ready(engine: ScriptedEngine) -> AssistantHandle:
    """A handle on an assistant that is loaded already, around ``engine`` and no router."""
    return AssistantHandle.loaded(Assistant(engine, None, "t"))


@pytest.fixture
def history(tmp_path: Path):
    with History(tmp_path / "h.sqlite3") as h:
        yield h


def test_a_turn_reports_in_order_and_passes_the_previous_modifier_to_the_router(history: History) -> None:
    router = FixedRouter("code", 0.9, "kw")
    assistant = Assistant(ScriptedEngine(["a", "b"]), router, "t")
    c = history.create_conversation("x", "sys")
    observer = Recorder()
    ChatTurn(history, AssistantHandle.loaded(assistant), TurnRequest(c.id, "first"), observer).run()
    assert observer.events == [("user", "first"), ("started", "code"), ("progress", "a"), ("progress", "ab"),
                               ("finished", "complete")]
    ChatTurn(history, AssistantHandle.loaded(assistant), TurnRequest(c.id, "second"), Recorder()).run()
    assert router.previous == [None, "code"]


def test_the_prompt_keeps_stopped_replies_and_leaves_out_empty_failed_ones(history: History) -> None:
    c = history.create_conversation("x")
    history.add_user_message(c.id, "q1")
    r1 = history.begin_reply(c.id, None)
    history.finish_reply(r1, "half", "stopped")
    history.add_user_message(c.id, "q2")
    r2 = history.begin_reply(c.id, None)
    history.finish_reply(r2, "", "error", error="boom")
    history.add_user_message(c.id, "q3")
    assert prompt_messages("sys", history.messages(c.id)) == [
        Message("system", "sys"), Message("user", "q1"), Message("assistant", "half"), Message("user", "q2"),
        Message("user", "q3")]
    assert prompt_messages("  ", [])[:1] == []


def test_stop_before_the_first_token_ends_the_reply_stopped_and_empty(history: History) -> None:
    gate = threading.Event()
    engine = ScriptedEngine(["never"], gate=gate)
    c = history.create_conversation("x")
    turn = ChatTurn(history, ready(engine), TurnRequest(c.id, "q"), Recorder())
    worker = threading.Thread(target=turn.run)
    worker.start()
    while not engine.calls:
        time.sleep(0.005)
    turn.stop()
    gate.set()
    worker.join(10)
    reply = history.messages(c.id)[-1]
    assert (reply.role, reply.status, reply.content) == ("assistant", "stopped", "")


def test_an_unknown_modifier_is_recorded_as_a_failed_reply_and_raised(history: History) -> None:
    c = history.create_conversation("x")
    observer = Recorder()
    turn = ChatTurn(history, ready(ScriptedEngine()), TurnRequest(c.id, "q", override="nosuch"), observer)
    with pytest.raises(ModifierError, match="unknown modifier 'nosuch'"):
        turn.run()
    stored = history.messages(c.id)
    assert [(m.role, m.status) for m in stored] == [("user", "complete"), ("assistant", "error")]
    assert "nosuch" in (stored[1].error or "")
    assert observer.events[-1] == ("finished", "error")


def test_a_failing_engine_is_released_and_its_reply_marked_failed(history: History) -> None:
    engine = ScriptedEngine(["a", "b", "c"], fail_with=ModelError("decode failed"))
    c = history.create_conversation("x")
    with pytest.raises(ModelError):
        ChatTurn(history, ready(engine), TurnRequest(c.id, "q"), Recorder()).run()
    reply = history.messages(c.id)[-1]
    assert (reply.status, reply.content, reply.error) == ("error", "ab", "decode failed")


def test_regenerating_replaces_the_replies_after_the_last_question(history: History) -> None:
    engine = ScriptedEngine(["new"])
    c = history.create_conversation("x")
    history.add_user_message(c.id, "q")
    old = history.begin_reply(c.id, None)
    history.finish_reply(old, "old", "complete")
    ChatTurn(history, ready(engine), TurnRequest(c.id, None), Recorder()).run()
    assert [(m.role, m.content) for m in history.messages(c.id)] == [("user", "q"), ("assistant", "new")]
    assert [m.content for m in engine.calls[0][0]] == ["q"]


def test_regenerating_without_a_question_is_a_clear_error(history: History) -> None:
    c = history.create_conversation("x")
    with pytest.raises(EdgeAssistantError, match="no question to answer"):
        ChatTurn(history, ready(ScriptedEngine()), TurnRequest(c.id, None), Recorder()).run()


def test_stopping_while_the_model_is_still_loading_ends_the_turn_as_stopped(history: History) -> None:
    c = history.create_conversation("x")

    def loader(report: LoadReport) -> Assistant:
        raise AssertionError("not called: in this test the model never finishes loading")

    turn = ChatTurn(history, AssistantHandle.loading(loader), TurnRequest(c.id, "q"), Recorder())
    outcome: list[StoredMessage] = []
    worker = threading.Thread(target=lambda: outcome.append(turn.run()))
    worker.start()
    time.sleep(0.2)
    turn.stop()
    worker.join(10)
    assert not worker.is_alive()
    assert outcome[0].status == "stopped" and outcome[0].content == ""
    assert [m.role for m in history.messages(c.id)] == ["user", "assistant"]
