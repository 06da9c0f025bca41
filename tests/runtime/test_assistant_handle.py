"""The handle on a model that may still be loading (runtime/assistant_handle.py)."""

from __future__ import annotations

import threading

import pytest

from edge_assistant.errors import ModelError
from edge_assistant.runtime.assistant import Assistant
from edge_assistant.runtime.assistant_handle import AssistantHandle, LoadReport
from tests.support.fakes import ScriptedEngine


class Stages:
    """A LoadReport that keeps what it was told."""

    def __init__(self) -> None:
        self.stages: list[tuple[str, float | None]] = []
        self.notices: list[str] = []

    def stage(self, text: str, fraction: float | None = None) -> None:
        self.stages.append((text, fraction))

    def notice(self, text: str) -> None:
        self.notices.append(text)


def test_a_handle_on_a_ready_assistant_answers_at_once_and_leaves_closing_to_its_maker() -> None:
    engine = ScriptedEngine(modifiers=("code", "reasoning"))
    assistant = Assistant(engine, None, "ready")
    handle = AssistantHandle.loaded(assistant)
    assert handle.ready and not handle.needs_loading
    assert handle.wait(threading.Event()) is assistant
    assert handle.modifiers == ("code", "reasoning")
    handle.close()
    assert not engine.closed


def test_a_waiting_thread_gets_the_assistant_once_the_loader_has_run_and_the_handle_closes_it() -> None:
    engine = ScriptedEngine(modifiers=("code",))
    release = threading.Event()

    def loader(report: LoadReport) -> Assistant:
        report.stage("Unpacking", 0.5)
        release.wait(10)
        return Assistant(engine, None, "late")

    handle = AssistantHandle.loading(loader)
    assert handle.needs_loading and not handle.ready and handle.modifiers is None
    got: list[Assistant | None] = []
    waiter = threading.Thread(target=lambda: got.append(handle.wait()))
    waiter.start()
    report = Stages()
    loading = threading.Thread(target=handle.load, args=(report,))
    loading.start()
    waiter.join(0.3)
    assert waiter.is_alive() and got == []       # still loading: the waiter waits
    release.set()
    loading.join(10)
    waiter.join(10)
    assert len(got) == 1 and got[0] is handle.assistant and got[0] is not None
    assert got[0].engine is engine and handle.ready and not handle.needs_loading
    assert handle.modifiers == ("code",) and report.stages == [("Unpacking", 0.5)]
    handle.close()
    handle.close()
    assert engine.closed


def test_waiting_ends_with_nothing_when_the_turn_is_stopped_before_the_model_loads() -> None:
    handle = AssistantHandle.loading(lambda report: Assistant(ScriptedEngine()))
    stop = threading.Event()
    got: list[Assistant | None] = [Assistant(ScriptedEngine())]
    waiter = threading.Thread(target=lambda: got.__setitem__(0, handle.wait(stop)))
    waiter.start()
    stop.set()
    waiter.join(10)
    assert not waiter.is_alive() and got == [None]
    assert handle.needs_loading                   # the loader was never run


def test_a_load_that_fails_is_raised_to_the_loader_and_named_to_every_waiter() -> None:
    def loader(report: LoadReport) -> Assistant:
        raise ModelError("llama.cpp could not load base.gguf", hint="re-download it")

    handle = AssistantHandle.loading(loader)
    with pytest.raises(ModelError, match="could not load base.gguf"):
        handle.load(Stages())
    assert not handle.ready and not handle.needs_loading
    assert handle.error is not None and "could not load base.gguf" in handle.error
    with pytest.raises(ModelError, match="there is no model to answer: .*could not load base.gguf") as raised:
        handle.wait()
    assert "restart `edge-assistant chat`" in (raised.value.hint or "")
    handle.close()  # nothing to close


def test_a_bug_in_the_loader_is_raised_as_it_is_and_waiters_are_told_to_report_it() -> None:
    def loader(report: LoadReport) -> Assistant:
        raise KeyError("oops")

    handle = AssistantHandle.loading(loader)
    with pytest.raises(KeyError):
        handle.load(Stages())
    with pytest.raises(ModelError, match=r"unexpected error while loading: KeyError\('oops'\) \(please report it\)"):
        handle.wait()
