"""The chat app driven through Textual's pilot, with a scripted engine."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable

from textual.widgets import Button, Input

from edge_assistant import paths
from edge_assistant.errors import ModelError
from edge_assistant.runtime.assistant import Assistant
from edge_assistant.runtime.assistant_handle import AssistantHandle, LoadReport
from edge_assistant.runtime.generation import Message
from edge_assistant.runtime.history import History
from edge_assistant.settings import Settings
from edge_assistant.tui import clipboard
from edge_assistant.tui.app import ChatApp, make_app
from edge_assistant.tui.commands import COMMANDS
from edge_assistant.tui.screens import HelpScreen, SearchScreen, TextPrompt
from edge_assistant.tui.widgets import ConversationList, ReplyView, UserTurn
from tests.support.fakes import FixedRouter, ScriptedEngine

from .conftest import SYSTEM, last_reply, reply_done, send, wait_until

CODE_REPLY = ["Use", " slicing", ":\n\n", "```python\n", "def rev(s):\n", "    return s[::-1]\n", "```\n",
              "\nDone", "."]


def notifications(app: ChatApp) -> list[str]:
    return [n.message for n in app._notifications]


def code_line_colours(reply: ReplyView, marker: str) -> set[object]:
    """The distinct foreground colours on the rendered line of ``reply`` that contains ``marker``."""
    body = reply.query_one(".reply-body")
    line = next(strip for strip in (body.render_line(y) for y in range(body.size.height)) if marker in strip.text)
    return {seg.style.color for seg in line if seg.style and seg.style.color}


async def test_a_reply_streams_into_markdown_with_highlighted_code_and_is_saved_complete(
        build_app: Callable[..., ChatApp], history: History) -> None:
    gate = threading.Event()
    engine = ScriptedEngine(CODE_REPLY, gate=gate, hold_at=7)  # hold after the closing fence
    app = build_app(engine)
    async with app.run_test() as pilot:
        await send(pilot, "reverse a string in python")
        await wait_until(pilot, lambda: "```\n" in getattr(last_reply(app), "text", ""))
        await pilot.pause()
        streaming = last_reply(app)
        assert streaming is not None and streaming.streaming and "Done" not in streaming.text
        # Rendered as Markdown while it streams: the fence is gone, the code is coloured.
        rendered = "\n".join(streaming.query_one(".reply-body").render_line(y).text
                              for y in range(streaming.query_one(".reply-body").size.height))
        assert "```" not in rendered and "return s[::-1]" in rendered
        assert len(code_line_colours(streaming, "def rev")) >= 2  # keyword and name styled apart
        gate.set()
        reply = await reply_done(pilot)
        assert len(code_line_colours(reply, "def rev")) >= 2
        turns = list(app.chat_screen.transcript.query(UserTurn))
        assert [str(t.render()) for t in turns] == ["reverse a string in python"]
    conversation = history.conversations()[0]
    stored = history.messages(conversation.id)
    assert [(m.role, m.status) for m in stored] == [("user", "complete"), ("assistant", "complete")]
    assert stored[1].content == "".join(CODE_REPLY)
    assert conversation.title == "reverse a string in python"


async def test_the_users_turn_is_committed_before_generation_starts(
        build_app: Callable[..., ChatApp], history: History) -> None:
    gate = threading.Event()
    engine = ScriptedEngine(["ok"], gate=gate)
    app = build_app(engine)
    async with app.run_test() as pilot:
        await send(pilot, "is my question safe?")
        await wait_until(pilot, lambda: bool(engine.calls))
        # The engine has been asked but has produced nothing: another connection already sees the turn.
        other = sqlite3.connect(str(history.path))
        rows = other.execute("SELECT role, content, status FROM messages ORDER BY id").fetchall()
        assert rows == [("user", "is my question safe?", "complete"), ("assistant", "", "partial")]
        gate.set()
        await reply_done(pilot)


async def test_escape_stops_within_a_token_and_keeps_the_partial_reply_marked_stopped(
        build_app: Callable[..., ChatApp], history: History) -> None:
    engine = ScriptedEngine([f"w{i} " for i in range(400)], delay_s=0.01)
    app = build_app(engine)
    async with app.run_test() as pilot:
        await send(pilot, "talk for a long time")
        await wait_until(pilot, lambda: engine.produced >= 5)
        await pilot.press("escape")
        at_stop = engine.produced
        reply = await reply_done(pilot)
        assert reply.status == "stopped"
        assert "stopped" in str(reply.query_one(".reply-meta").render())
    stored = history.messages(history.conversations()[0].id)[-1]
    assert stored.status == "stopped"
    assert stored.completion_tokens is not None and stored.completion_tokens - at_stop <= 1
    assert stored.content == "".join(f"w{i} " for i in range(stored.completion_tokens))
    assert 5 <= stored.completion_tokens < 400


async def test_token_updates_coalesce_so_the_screen_keeps_up_with_a_fast_engine(
        build_app: Callable[..., ChatApp], monkeypatch) -> None:
    tokens = [f"t{i} " for i in range(3000)]
    shown: list[int] = []
    original = ReplyView.show_text

    async def counting(self: ReplyView, text: str, count: int, tok_s: float) -> None:
        shown.append(count)
        await original(self, text, count, tok_s)

    monkeypatch.setattr(ReplyView, "show_text", counting)
    app = build_app(ScriptedEngine(tokens), max_tokens=len(tokens))
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "go")
        reply = await reply_done(pilot, timeout_s=60)
        assert reply.text == "".join(tokens)
        body = reply.query_one(".reply-body")
        assert "t2999" in body.render_line(body.size.height - 1).text  # the screen ends on the last token
    # A frame per tenth of a second at most, not one per token; always moving forward.
    assert 0 < len(shown) < len(tokens) / 10
    assert shown == sorted(shown) and len(set(shown)) == len(shown)


async def test_modifier_commands_choose_who_answers_one_message_or_from_now_on(
        build_app: Callable[..., ChatApp]) -> None:
    engine = ScriptedEngine(["ok"])
    router = FixedRouter("automation", 0.7, "keyword 'every day'")
    app = build_app(engine, router)
    async with app.run_test() as pilot:
        screen = app.chat_screen
        await send(pilot, "/code write a loop")
        await reply_done(pilot)
        await send(pilot, "and now?")
        await reply_done(pilot)
        await send(pilot, "/base hello")
        await reply_done(pilot)
        await send(pilot, "/reason")
        await pilot.pause()
        assert "mode: reasoning" in str(screen.status.render())
        await send(pilot, "think")
        await reply_done(pilot)
        await send(pilot, "/use automation")
        await send(pilot, "/auto")
        await send(pilot, "routed")
        await reply_done(pilot)
        assert [modifier for _, modifier, _ in engine.calls] == ["code", "automation", None, "reasoning",
                                                                  "automation"]
        assert engine.calls[0][0][-1] == Message("user", "write a loop")
        assert [r.border_title for r in screen.transcript.query(ReplyView)] == \
            ["code", "automation", "base", "reasoning", "automation"]


async def test_the_base_alone_is_the_same_choice_under_each_spelling(build_app: Callable[..., ChatApp]) -> None:
    engine = ScriptedEngine(["ok"])
    app = build_app(engine, FixedRouter("code", 0.9, "keyword 'def'"), modifier="none")  # the old setting
    async with app.run_test() as pilot:
        screen = app.chat_screen
        assert "mode: base" in str(screen.status.render())
        await send(pilot, "from the setting")
        await reply_done(pilot)
        for line in ("/base one", "/use none two", "/use base three", "/use BASE four"):
            await send(pilot, line)
            await reply_done(pilot)
        await send(pilot, "/use none")   # from now on
        await pilot.pause()
        assert "mode: base" in str(screen.status.render())
        await send(pilot, "five")
        await reply_done(pilot)
        assert [modifier for _, modifier, _ in engine.calls] == [None] * 6
        assert {r.border_title for r in screen.transcript.query(ReplyView)} == {"base"}
        assert {r.reason for r in screen.transcript.query(ReplyView)} == {"user chose the base alone"}


async def test_modifier_shortcuts_come_from_the_bundles_own_modifiers(build_app: Callable[..., ChatApp]) -> None:
    engine = ScriptedEngine(["ok"], modifiers=("sql", "reasoning", "search"))
    app = build_app(engine)
    async with app.run_test(size=(100, 60)) as pilot:
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        listed = "\n".join(str(s.render()) for s in app.screen.query("Static"))
        assert "/sql [TEXT]" in listed and "/reasoning [TEXT]" in listed and "/reason [TEXT]" in listed
        assert "/code" not in listed            # the demo's name is no command for this bundle
        await pilot.press("escape")
        await send(pilot, "/sql count the rows")
        await reply_done(pilot)
        await send(pilot, "/reason why")        # the older shortcut of `reasoning`
        await reply_done(pilot)
        await send(pilot, "/search")            # a built-in command keeps its meaning...
        await pilot.pause()
        assert isinstance(app.screen, SearchScreen)
        await pilot.press("escape")
        await send(pilot, "/use search find it")  # ...and that modifier is chosen by name
        await reply_done(pilot)
        await send(pilot, "/code write a loop")
        await pilot.pause()
        assert any("Unknown command /code" in t for t in notifications(app))
    assert [(messages[-1].content, modifier) for messages, modifier, _ in engine.calls] == \
        [("count the rows", "sql"), ("why", "reasoning"), ("find it", "search")]
    without = build_app(ScriptedEngine(["ok"], modifiers=("sql",)))
    async with without.run_test() as pilot:
        await send(pilot, "/reason why")
        await pilot.pause()
        assert any("Unknown command /reason" in t for t in notifications(without))


async def test_an_unknown_modifier_or_command_is_a_notification_and_nothing_is_sent(
        build_app: Callable[..., ChatApp], history: History) -> None:
    engine = ScriptedEngine(["ok"])
    app = build_app(engine)
    async with app.run_test() as pilot:
        await send(pilot, "/use nosuch tell me")
        await pilot.pause()
        assert app.chat_screen.prompt.value == "/use nosuch tell me"  # given back to fix the typo
        await send(pilot, "/frobnicate")
        await pilot.pause()
        texts = notifications(app)
        assert any("unknown modifier 'nosuch'" in t and "code, reasoning, automation" in t for t in texts)
        assert any("Unknown command /frobnicate" in t for t in texts)
    assert engine.calls == []
    assert history.conversations() == []


async def test_status_line_names_bundle_modifier_confidence_and_speed_and_why_on_demand(
        build_app: Callable[..., ChatApp]) -> None:
    app = build_app(ScriptedEngine(["a", "b", "c", "d"], delay_s=0.005), FixedRouter("code", 0.83, "keyword 'def'"),
                    bundle="demo-bundle")
    async with app.run_test() as pilot:
        await send(pilot, "write def")
        reply = await reply_done(pilot)
        status = str(app.chat_screen.status.render())
        assert "demo-bundle" in status and "last reply: code (83%)" in status and "tok/s" in status
        reason = reply.query_one(".reply-reason")
        assert not reason.display or not reason.styles.display == "block"
        assert reason.region.height == 0
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert reason.region.height == 1 and "keyword 'def'" in str(reason.render())


async def test_the_status_line_says_generating_only_while_a_reply_is_in_progress(
        build_app: Callable[..., ChatApp]) -> None:
    gate = threading.Event()
    engine = ScriptedEngine([f"w{i} " for i in range(400)], delay_s=0.01, gate=gate, hold_at=1)
    app = build_app(engine)
    async with app.run_test() as pilot:
        status = app.chat_screen.status
        await send(pilot, "talk for a long time")
        await wait_until(pilot, lambda: engine.produced >= 1)
        assert "generating" in str(status.render())
        await pilot.press("escape")
        gate.set()
        assert (await reply_done(pilot)).status == "stopped"
        await pilot.pause()
        assert "stopping" not in str(status.render()) and "generating" not in str(status.render())
        engine.delay_s, engine.tokens = 0.0, ["one", " two"]
        await send(pilot, "count")
        assert (await reply_done(pilot)).status == "complete"
        await pilot.pause()
        assert "generating" not in str(status.render())


async def test_conversations_can_be_created_switched_renamed_and_deleted(
        build_app: Callable[..., ChatApp], history: History) -> None:
    app = build_app(ScriptedEngine(["ok"]))
    async with app.run_test() as pilot:
        screen = app.chat_screen
        await send(pilot, "first topic")
        await reply_done(pilot)
        first = screen.conversation_id
        await pilot.press("ctrl+n")
        assert screen.conversation_id is None and not screen.transcript.children
        await send(pilot, "second topic")
        await reply_done(pilot)
        second = screen.conversation_id
        sidebar = screen.query_one(ConversationList)
        assert [str(o.prompt) for o in sidebar.options] == ["second topic", "first topic"]

        await screen.open_conversation(first)  # what selecting it in the sidebar does
        await pilot.pause()
        assert [str(t.render()) for t in screen.transcript.query(UserTurn)] == ["first topic"]

        await send(pilot, "/rename Renamed first")
        await pilot.pause()
        assert history.conversation(first).title == "Renamed first"

        await pilot.press("f8")
        await pilot.pause()
        await pilot.press("y")
        await wait_until(pilot, lambda: screen.conversation_id == second)
        assert [c.id for c in history.conversations()] == [second]
        assert [str(o.prompt) for o in sidebar.options] == ["second topic"]


async def test_selecting_a_conversation_in_the_sidebar_opens_it(
        build_app: Callable[..., ChatApp], history: History) -> None:
    old = history.create_conversation("older chat")
    history.add_user_message(old.id, "a question from yesterday")
    newer = history.create_conversation("newer chat")
    history.add_user_message(newer.id, "today")
    app = build_app()
    async with app.run_test() as pilot:
        screen = app.chat_screen
        assert screen.conversation_id == newer.id  # the most recent opens at start
        sidebar = screen.query_one(ConversationList)
        sidebar.focus()
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: screen.conversation_id == old.id)
        assert [str(t.render()) for t in screen.transcript.query(UserTurn)] == ["a question from yesterday"]


async def test_search_finds_a_message_and_opens_its_conversation(
        build_app: Callable[..., ChatApp], history: History) -> None:
    target = history.create_conversation("gardening")
    history.add_user_message(target.id, "when should I plant tulips?")
    other = history.create_conversation("cooking")
    history.add_user_message(other.id, "boil an egg")
    app = build_app()
    async with app.run_test() as pilot:
        await pilot.press("ctrl+f")
        await pilot.pause()
        assert isinstance(app.screen, SearchScreen)
        await pilot.press(*"tulip")
        await pilot.pause()
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.chat_screen.conversation_id == target.id)
        assert not isinstance(app.screen, SearchScreen)


async def test_each_conversation_sends_its_own_system_prompt(
        build_app: Callable[..., ChatApp], history: History) -> None:
    engine = ScriptedEngine(["ok"])
    app = build_app(engine)
    async with app.run_test() as pilot:
        await send(pilot, "/system Answer in French.")
        await send(pilot, "hello")
        await reply_done(pilot)
        await pilot.press("ctrl+n")
        await send(pilot, "hello again")
        await reply_done(pilot)
    assert engine.calls[0][0][0] == Message("system", "Answer in French.")
    assert engine.calls[1][0][0] == Message("system", SYSTEM)
    assert [c.system_prompt for c in history.conversations()] == [SYSTEM, "Answer in French."]


async def test_regenerate_replaces_the_last_reply(build_app: Callable[..., ChatApp], history: History) -> None:
    engine = ScriptedEngine(["first answer"])
    app = build_app(engine)
    async with app.run_test() as pilot:
        await send(pilot, "question")
        await reply_done(pilot)
        engine.tokens = ["second answer"]
        await pilot.press("ctrl+r")
        await pilot.pause()
        reply = await reply_done(pilot)
        assert reply.text == "second answer"
        assert len(list(app.chat_screen.transcript.query(ReplyView))) == 1
    assert [m.content for m in engine.calls[1][0]] == [SYSTEM, "question"]  # the old reply is not in the prompt
    stored = history.messages(history.conversations()[0].id)
    assert [(m.role, m.content) for m in stored] == [("user", "question"), ("assistant", "second answer")]


async def test_copying_a_reply_or_its_code_uses_osc52_and_keeps_a_file_copy(
        build_app: Callable[..., ChatApp]) -> None:
    app = build_app(ScriptedEngine(CODE_REPLY))
    async with app.run_test() as pilot:
        await send(pilot, "code please")
        await reply_done(pilot)
        await pilot.press("ctrl+y")
        assert app.clipboard == "".join(CODE_REPLY)
        assert clipboard.fallback_file().read_text(encoding="utf-8") == "".join(CODE_REPLY)
        await pilot.press("ctrl+g")
        assert app.clipboard == "def rev(s):\n    return s[::-1]"
        assert clipboard.fallback_file().read_text(encoding="utf-8") == app.clipboard
        assert any(str(clipboard.fallback_file()) in t for t in notifications(app))


async def test_export_writes_the_conversation_as_markdown_and_names_the_file(
        build_app: Callable[..., ChatApp], tmp_path: Path) -> None:
    app = build_app(ScriptedEngine(CODE_REPLY), FixedRouter("code", 0.9, "kw"))
    async with app.run_test() as pilot:
        await send(pilot, "code please")
        await reply_done(pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        exported = list((paths.data_dir() / "exports").glob("*.md"))
        assert len(exported) == 1
        assert any(str(exported[0]) in t for t in notifications(app))
        text = exported[0].read_text(encoding="utf-8")
        assert "## You\n\ncode please" in text and "```python\ndef rev(s):" in text
        assert "modifier: code, confidence 0.90" in text
        await send(pilot, f"/export {tmp_path / 'elsewhere'}")
        await pilot.pause()
        assert len(list((tmp_path / "elsewhere").glob("*.md"))) == 1


async def test_help_screen_lists_every_key_and_command(build_app: Callable[..., ChatApp]) -> None:
    app = build_app()
    async with app.run_test(size=(100, 60)) as pilot:
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = "\n".join(str(s.render()) for s in app.screen.query("Static"))
        for command in COMMANDS:
            assert f"/{command.name}" in text
        for binding in app.chat_screen.BINDINGS:
            if binding.action != "app.help":
                assert binding.tooltip in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_every_slash_command_runs_without_crashing(build_app: Callable[..., ChatApp]) -> None:
    app = build_app(ScriptedEngine(CODE_REPLY))
    async with app.run_test() as pilot:
        await send(pilot, "something to work on")
        await reply_done(pilot)
        for command in COMMANDS:
            if command.name in ("quit", "delete"):
                continue
            await send(pilot, f"/{command.name}")
            await pilot.pause()
            if app.screen is not app.chat_screen:
                await pilot.press("escape")
            if app.chat_screen.turn is not None:
                await reply_done(pilot)
        assert app.is_running


async def test_the_app_is_usable_while_the_model_loads_and_a_message_waits_for_it(
        history: History, settings: Settings) -> None:
    release = threading.Event()
    engine = ScriptedEngine(["loaded", " answer"])

    def loader(report: LoadReport) -> Assistant:
        report.stage("Unpacking test base (first run only)", 0.25)
        release.wait(10)
        return Assistant(engine, None, "late-bundle")

    app = make_app(settings, AssistantHandle.loading(loader), history)
    async with app.run_test() as pilot:
        screen = app.chat_screen
        await wait_until(pilot, lambda: "Unpacking" in screen.status.state)
        assert screen.query_one("#load-panel").display
        await pilot.press(*"hi")
        assert screen.prompt.value == "hi"
        await pilot.press("enter")
        await pilot.pause()
        assert len(history.messages(history.conversations()[0].id)) == 1  # committed, waiting for the model
        assert engine.calls == []
        release.set()
        reply = await reply_done(pilot)
        assert reply.text == "loaded answer"
        assert not screen.query_one("#load-panel").display
        assert "late-bundle" in str(screen.status.render())


async def test_a_model_that_fails_to_load_is_a_notification_not_a_crash(
        history: History, settings: Settings) -> None:
    def loader(report: LoadReport) -> Assistant:
        raise ModelError("llama.cpp could not load base.gguf", hint="re-download it")

    app = make_app(settings, AssistantHandle.loading(loader), history)
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: any("could not load" in t for t in notifications(app)))
        await send(pilot, "anyone there?")
        reply = await reply_done(pilot)
        assert reply.status == "error" and "could not load" in (reply.error or "")
        assert app.is_running
    stored = history.messages(history.conversations()[0].id)
    assert [(m.role, m.status) for m in stored] == [("user", "complete"), ("assistant", "error")]


async def test_an_engine_error_mid_reply_keeps_the_text_so_far_marked_failed(
        build_app: Callable[..., ChatApp], history: History) -> None:
    engine = ScriptedEngine(["one ", "two ", "three "], fail_with=ModelError("decode failed", hint="restart"))
    app = build_app(engine)
    async with app.run_test() as pilot:
        await send(pilot, "go")
        reply = await reply_done(pilot)
        assert reply.status == "error"
        assert any("decode failed" in t for t in notifications(app))
        await send(pilot, "still alive?")  # the app keeps working
        await reply_done(pilot)
    stored = history.messages(history.conversations()[0].id)
    assert (stored[1].status, stored[1].content) == ("error", "one two ")


async def test_quitting_during_a_reply_saves_it_as_stopped(
        build_app: Callable[..., ChatApp], history: History) -> None:
    engine = ScriptedEngine([f"w{i} " for i in range(1000)], delay_s=0.01)
    app = build_app(engine)
    async with app.run_test() as pilot:
        await send(pilot, "long answer")
        await wait_until(pilot, lambda: engine.produced >= 3)
        started = time.monotonic()
        await pilot.press("ctrl+q")
    assert time.monotonic() - started < 5
    stored = history.messages(history.conversations()[0].id)[-1]
    assert stored.status == "stopped" and stored.content.startswith("w0 w1 w2 ")


async def test_reopening_shows_stored_turns_with_their_status(
        build_app: Callable[..., ChatApp], history: History) -> None:
    c = history.create_conversation("crashed earlier")
    history.add_user_message(c.id, "the question")
    reply_id = history.begin_reply(c.id, None)
    history.save_partial(reply_id, "half an ans", 3)
    app = build_app()
    async with app.run_test() as pilot:
        await pilot.pause()
        reply = last_reply(app)
        assert reply is not None and reply.status == "partial" and reply.text == "half an ans"
        assert "unfinished" in str(reply.query_one(".reply-meta").render())
        assert reply.has_class("-partial")


async def test_a_long_conversation_opens_on_its_latest_turns_and_shows_the_rest_on_request(
        build_app: Callable[..., ChatApp], history: History) -> None:
    c = history.create_conversation("long")
    for i in range(10):
        history.add_user_message(c.id, f"question {i}")
        reply_id = history.begin_reply(c.id, None)
        history.finish_reply(reply_id, f"answer {i}", "complete")
    app = build_app()
    async with app.run_test() as pilot:
        screen = app.chat_screen
        shown = [str(t.render()) for t in screen.transcript.query(UserTurn)]
        assert shown == [f"question {i}" for i in range(7, 10)]
        screen.query_one("#show-earlier", Button).press()  # scrolled out of view: the transcript sits at the end
        await wait_until(pilot, lambda: not screen.query("#show-earlier"))
        shown = [str(t.render()) for t in screen.transcript.query(UserTurn)]
        assert shown == [f"question {i}" for i in range(10)]
        assert [r.text for r in screen.transcript.query(ReplyView)] == [f"answer {i}" for i in range(10)]
        assert not screen.query("#show-earlier")


async def test_rename_and_system_prompt_dialogs_edit_the_current_conversation(
        build_app: Callable[..., ChatApp], history: History) -> None:
    app = build_app(ScriptedEngine(["ok"]))
    async with app.run_test() as pilot:
        await send(pilot, "first words")
        await reply_done(pilot)
        conversation_id = app.chat_screen.conversation_id
        await pilot.press("f2")
        await pilot.pause()
        assert isinstance(app.screen, TextPrompt) and app.screen.query_one(Input).value == "first words"
        await pilot.press("ctrl+u", *"Better title", "enter")
        await pilot.pause()
        await pilot.press("f3")
        await pilot.pause()
        assert app.screen.query_one(Input).value == SYSTEM
        await pilot.press("ctrl+u", *"Be terse.", "enter")
        await pilot.pause()
        await pilot.press("f2", "escape")  # Esc cancels: nothing changes
        await pilot.pause()
    conversation = history.conversation(conversation_id)
    assert (conversation.title, conversation.system_prompt) == ("Better title", "Be terse.")
