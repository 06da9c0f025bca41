"""The first run as a new user sees it: a welcome once, honest confidence, warnings on destructive
commands, notices that leave the prompt and the status line visible, and exports that stay readable."""

from __future__ import annotations

from typing import Callable

from textual.widgets._toast import Toast

from edge_assistant import paths
from edge_assistant.runtime.history import History
from edge_assistant.tui.app import ChatApp
from edge_assistant.tui.widgets import ReplyView, Welcome
from tests.support.fakes import FixedRouter, ScriptedEngine

from .conftest import reply_done, send, wait_until


async def test_the_welcome_explains_modifiers_the_router_and_the_demo_model_once(
        build_app: Callable[..., ChatApp]) -> None:
    app = build_app(ScriptedEngine(["ok"]))
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        welcome = app.chat_screen.query(Welcome)
        assert len(welcome) == 1
        text = str(welcome.first().render())
        assert "Modifiers" in text and "router" in text and "135M" in text and "often wrong" in text
        assert welcome.first().region.height > 3  # on screen, not just mounted
    again = build_app(ScriptedEngine(["ok"]))
    async with again.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        assert len(again.chat_screen.query(Welcome)) == 0


async def test_an_override_or_a_missing_router_never_claims_to_be_sure(build_app: Callable[..., ChatApp]) -> None:
    app = build_app(ScriptedEngine(["ok"]), router=None)  # no router: the base answers everything
    async with app.run_test() as pilot:
        await send(pilot, "hello")
        reply = await reply_done(pilot)
        assert "sure" not in str(reply.query_one(".reply-meta").render())
        assert "%" not in str(app.chat_screen.status.render())
        await send(pilot, "/code write a loop")
        reply = await reply_done(pilot)
        assert reply.border_title == "code" and "sure" not in str(reply.query_one(".reply-meta").render())
    routed = build_app(ScriptedEngine(["ok"]), FixedRouter("code", 0.83, "keyword 'def'"))
    async with routed.run_test() as pilot:
        await send(pilot, "write def")
        reply = await reply_done(pilot)
        assert "83% sure" in str(reply.query_one(".reply-meta").render())  # a real decision still says so


async def test_a_reply_with_a_destructive_command_gets_a_warning_and_a_safe_one_does_not(
        build_app: Callable[..., ChatApp]) -> None:
    app = build_app(ScriptedEngine(["Run:\n\n", "```sh\n", "sudo rm -rf /var/log\n", "```\n"]))
    async with app.run_test(size=(100, 40)) as pilot:
        await send(pilot, "delete old log files")
        reply = await reply_done(pilot)
        await pilot.pause()
        warning = reply.query_one(".reply-warning")
        assert warning.display and warning.region.height >= 1
        assert "rm -rf" in str(warning.render()) and reply.has_class("-dangerous")
    safe = build_app(ScriptedEngine(["find /var/log -name '*.log' -mtime +7 -delete"]))
    async with safe.run_test() as pilot:
        await send(pilot, "delete old log files")
        reply = await reply_done(pilot)
        await pilot.pause()
        assert not reply.query_one(".reply-warning").display and not reply.has_class("-dangerous")


async def test_a_stored_reply_with_a_destructive_command_is_flagged_when_reopened(
        build_app: Callable[..., ChatApp], history: History) -> None:
    conversation = history.create_conversation("disk")
    history.add_user_message(conversation.id, "wipe my usb stick")
    reply_id = history.begin_reply(conversation.id, None)
    history.finish_reply(reply_id, "sudo dd if=/dev/zero of=/dev/sdb bs=1M", "complete")
    app = build_app(ScriptedEngine(["ok"]))
    async with app.run_test() as pilot:
        await pilot.pause()
        reply = app.chat_screen.transcript.query(ReplyView).last()
        await wait_until(pilot, lambda: reply.query_one(".reply-warning").display)
        assert "dd of=/dev/" in str(reply.query_one(".reply-warning").render())


async def test_notices_cover_neither_the_prompt_nor_the_status_line(build_app: Callable[..., ChatApp]) -> None:
    app = build_app(ScriptedEngine(["ok"]))
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        screen = app.chat_screen
        for i in range(3):
            screen.notify(f"notice number {i} with enough words to wrap onto a second line of the toast",
                          timeout=30)
        await wait_until(pilot, lambda: len(app.screen.query(Toast)) == 3
                         and all(t.region.height > 0 for t in app.screen.query(Toast)))
        toasts = list(app.screen.query(Toast))
        covered = [screen.prompt.region, screen.status.region]
        for toast in toasts:
            assert toast.region.height > 0
            for region in covered:
                assert not toast.region.overlaps(region), (toast.region, region)


async def test_export_closes_the_code_fence_of_a_stopped_reply(
        build_app: Callable[..., ChatApp], history: History) -> None:
    conversation = history.create_conversation("fence")
    history.add_user_message(conversation.id, "write a function")
    reply_id = history.begin_reply(conversation.id, None)
    history.finish_reply(reply_id, "Here:\n\n```python\ndef f():\n    return", "stopped")
    history.add_user_message(conversation.id, "thanks, and now a test?")
    app = build_app(ScriptedEngine(["ok"]))
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
    exported = list((paths.data_dir() / "exports").glob("*.md"))
    assert len(exported) == 1
    text = exported[0].read_text(encoding="utf-8")
    stopped = text.index("def f():")
    closing = text.index("```\n", stopped)
    assert closing < text.index("thanks, and now a test?")  # the next turn is outside the code block
    fences = [line for line in text.splitlines() if line.startswith("```")]
    assert len(fences) % 2 == 0
