"""The chat app on the real engine: SmolLM2-135M through llama.cpp, loaded the way `chat` loads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_assistant.runtime.history import History
from edge_assistant.settings import Settings
from edge_assistant.tui.app import make_app
from edge_assistant.tui.chat_screen import ChatScreen
from edge_assistant.tui.loading import assistant_loader
from edge_assistant.tui.messages import LoadProgress
from tests.support.bundles import smollm2_bundle

from .conftest import reply_done, send, wait_until
from tests.support.answers import on_topic_capital_answer


@pytest.mark.real_model
async def test_the_real_model_loads_in_the_background_answers_and_stops_on_escape(
        tmp_path: Path, smollm2_gguf: Path) -> None:
    # starter=False: the embedded demo model alone (the shipped starter is tested in test_shipped_starter.py).
    settings = Settings(threads=1, max_tokens=160, temperature=0.0, seed=7, context_length=1024, starter=False)
    with History(tmp_path / "history.sqlite3") as history:
        # The CLI's loader: no bundle installed in this test's home, so the embedded demo model.
        app = make_app(settings, assistant_loader(settings), history)
        async with app.run_test() as pilot:
            screen = app.chat_screen
            await wait_until(pilot, lambda: app.model.ready, timeout_s=120)
            await pilot.pause()
            assert "SmolLM2" in str(screen.status.render())
            assert any("embedded demo model" in n.message for n in app._notifications)

            await send(pilot, "What is the capital of France? Answer in one word.")
            reply = await reply_done(pilot, timeout_s=120)
            assert reply.status == "complete" and on_topic_capital_answer(reply.text)
            assert "tok/s" in str(screen.status.render())

            await send(pilot, "Write a long essay about the history of Europe.")
            await wait_until(pilot, lambda: bool(screen.stream.views) and
                             any(v.tokens and v.tokens >= 3 for v in screen.stream.views.values()), timeout_s=120)
            await pilot.press("escape")
            stopped = await reply_done(pilot, timeout_s=60)
            assert stopped.status == "stopped"

        conversation = history.conversations()[0]
        stored = history.messages(conversation.id)
        assert [(m.role, m.status) for m in stored] == [
            ("user", "complete"), ("assistant", "complete"), ("user", "complete"), ("assistant", "stopped")]
        assert stored[1].content == reply.text and stored[1].decode_tok_s and stored[1].decode_tok_s > 0
        assert stored[3].content and 3 <= (stored[3].completion_tokens or 0) < 160


@pytest.mark.real_model
async def test_a_bundle_unpacks_with_progress_and_a_modifier_answers_when_asked(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, smollm2_gguf: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = smollm2_bundle(tmp_path_factory.mktemp("bundles"), smollm2_gguf)  # SmolLM2 + a random LoRA `code`
    stages: list[tuple[str, float | None]] = []
    original = ChatScreen.on_load_progress

    def record(self: ChatScreen, event: LoadProgress) -> None:
        stages.append((event.stage, event.fraction))
        original(self, event)

    monkeypatch.setattr(ChatScreen, "on_load_progress", record)
    settings = Settings(threads=1, max_tokens=8, temperature=0.0, seed=3, context_length=512, bundle=str(bundle))
    with History(tmp_path / "history.sqlite3") as history:
        app = make_app(settings, assistant_loader(settings), history)
        async with app.run_test() as pilot:
            await wait_until(pilot, lambda: app.model.ready, timeout_s=180)
            await pilot.pause()
            assert app.model.modifiers == ("code",)
            await send(pilot, "/code Say hello.")
            reply = await reply_done(pilot, timeout_s=120)
            assert reply.status == "complete" and reply.modifier == "code"
            status = str(app.chat_screen.status.render())
            assert "last reply: code" in status and "%" not in status  # a user choice claims no certainty
        stored = history.messages(history.conversations()[0].id)
        assert (stored[-1].modifier, stored[-1].route_reason) == ("code", "user chose 'code'")
    unpacking = [fraction for stage, fraction in stages if stage.startswith("Unpacking")]
    # Coalesced on the way (only the newest waiting update is drawn), but never backwards, ending at 100 %.
    assert unpacking and unpacking == sorted(unpacking) and unpacking[-1] == pytest.approx(1.0)
    assert stages[-1] == ("Loading the model…", None)


@pytest.mark.real_model
async def test_the_why_line_says_when_a_turn_reused_a_kept_state_and_how_many_tokens_it_read(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, smollm2_gguf: Path) -> None:
    bundle = smollm2_bundle(tmp_path_factory.mktemp("bundles"), smollm2_gguf)  # SmolLM2 + a random LoRA `code`
    settings = Settings(threads=1, max_tokens=6, temperature=0.0, seed=3, context_length=512, bundle=str(bundle))
    with History(tmp_path / "history.sqlite3") as history:
        app = make_app(settings, assistant_loader(settings), history)
        async with app.run_test() as pilot:
            await wait_until(pilot, lambda: app.model.ready, timeout_s=180)
            await send(pilot, "/code Say hello.")
            first = await reply_done(pilot, timeout_s=120)
            await send(pilot, "/base Say hi.")
            await reply_done(pilot, timeout_s=120)
            await send(pilot, "/code Say hello again.")
            back = await reply_done(pilot, timeout_s=120)
            await pilot.press("ctrl+t")
            await pilot.pause()
            first_why = str(first.query_one(".reply-reason").render())
            back_why = str(back.query_one(".reply-reason").render())
        stored = history.messages(history.conversations()[0].id)
    assert f"no kept state, read all {stored[1].prompt_tokens} tokens" in first_why
    last = stored[-1]
    # Restored on the switch back, or already the working state if the catch-up after the base's
    # reply brought code's state up to date last.
    assert last.modifier == "code" and last.kv_state in ("kept", "restored")
    assert last.read_tokens is not None and last.read_tokens < last.prompt_tokens
    assert "reused" in back_why and f"read {last.read_tokens} of {last.prompt_tokens} tokens" in back_why
