"""The SQLite chat history: migrations, durability while streaming, search, export, two instances."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from edge_assistant.errors import HistoryError
from edge_assistant.router.decision import RouteDecision
from edge_assistant.runtime import history as history_module
from edge_assistant.runtime.generation import GenerationResult
from edge_assistant.runtime.history import MIGRATIONS, SCHEMA_VERSION, History
from edge_assistant.runtime.reply_recorder import ReplyRecorder


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "history.sqlite3"


def _raw(path: Path) -> sqlite3.Connection:
    """A plain second connection, as another process would have."""
    conn = sqlite3.connect(str(path))
    conn.row_factory = sqlite3.Row
    return conn


def test_a_new_history_is_in_wal_mode_with_every_migration_applied(db: Path) -> None:
    History(db).close()
    conn = _raw(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == MIGRATIONS[-1].version
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"conversations", "messages", "messages_fts"} <= tables


def test_migrations_are_numbered_in_order_without_gaps() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


def test_reopening_keeps_data_and_does_not_reapply_migrations(db: Path) -> None:
    with History(db) as h:
        conversation = h.create_conversation("first")
        h.add_user_message(conversation.id, "hello")
    with History(db) as h:
        assert [m.content for m in h.messages(conversation.id)] == ["hello"]
        assert h.schema_version == SCHEMA_VERSION


def test_a_history_from_a_newer_version_is_refused_and_left_untouched(db: Path) -> None:
    History(db).close()
    conn = _raw(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with pytest.raises(HistoryError, match="newer edge-assistant") as info:
        History(db)
    assert "upgrade" in str(info.value)
    assert db.read_bytes() == before


def test_a_file_that_is_not_sqlite_gives_a_clear_error(db: Path) -> None:
    db.write_bytes(b"this is not a database, just some text " * 100)
    with pytest.raises(HistoryError, match="not a usable chat history") as info:
        History(db)
    assert "move the file aside" in str(info.value)


def test_without_fts5_search_falls_back_to_like(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history_module, "_fts5_available", lambda conn: False)
    with History(db) as h:
        assert not h.has_fts
        c = h.create_conversation("plain")
        h.add_user_message(c.id, "the zebra crossed 100% of the road")
        h.add_user_message(c.id, "nothing here")
        hits = h.search("zebra 100%")
        assert [hit.snippet for hit in hits] == ["the zebra crossed 100% of the road"]
        assert h.search("zebra_") == []  # LIKE wildcards in the query are literal


def test_the_user_turn_is_visible_to_another_connection_before_any_reply(db: Path) -> None:
    with History(db) as h:
        c = h.create_conversation("q")
        h.add_user_message(c.id, "what is WAL?")
        rows = _raw(db).execute("SELECT role, content FROM messages").fetchall()
        assert [tuple(r) for r in rows] == [("user", "what is WAL?")]


def test_partial_reply_is_committed_every_few_tokens_and_marked(db: Path) -> None:
    with History(db) as h:
        c = h.create_conversation("q")
        h.add_user_message(c.id, "count")
        reply_id = h.begin_reply(c.id, RouteDecision("code", 0.8, "keyword 'count'"))
        recorder = ReplyRecorder(h, reply_id, every_tokens=3, every_s=3600)
        other = _raw(db)
        seen = []
        for piece in ["one ", "two ", "three ", "four ", "five "]:
            recorder.add(piece)
            seen.append(other.execute("SELECT content, status FROM messages WHERE id = ?", (reply_id,)).fetchone())
        assert [tuple(r) for r in seen] == [("", "partial"), ("", "partial"), ("one two three ", "partial"),
                                            ("one two three ", "partial"), ("one two three ", "partial")]
        final = recorder.finish("stopped", GenerationResult(completion_tokens=5, decode_tok_s=42.0))
        assert (final.content, final.status, final.modifier, final.route_confidence) == \
            ("one two three four five ", "stopped", "code", 0.8)
        assert final.decode_tok_s == 42.0


def test_partial_reply_is_also_committed_after_the_time_interval(db: Path) -> None:
    now = [0.0]
    with History(db) as h:
        c = h.create_conversation("q")
        reply_id = h.begin_reply(c.id, None)
        recorder = ReplyRecorder(h, reply_id, every_tokens=1000, every_s=0.5, clock=lambda: now[0])
        recorder.add("a")
        now[0] = 0.6
        recorder.add("b")
        assert h.message(reply_id).content == "ab"


def test_a_finished_reply_is_not_overwritten_by_a_late_partial_save(db: Path) -> None:
    with History(db) as h:
        c = h.create_conversation("q")
        reply_id = h.begin_reply(c.id, None)
        h.finish_reply(reply_id, "final", "complete")
        h.save_partial(reply_id, "fin", 1)
        assert (h.message(reply_id).content, h.message(reply_id).status) == ("final", "complete")


def test_search_finds_words_in_messages_and_titles_and_treats_syntax_as_text(db: Path) -> None:
    with History(db) as h:
        a = h.create_conversation("Rust lifetimes")
        h.add_user_message(a.id, "explain borrow checking please")
        b = h.create_conversation("Shopping")
        h.add_user_message(b.id, "buy apples AND oranges")
        assert {(hit.conversation_id, hit.message_id is None) for hit in h.search("rust")} == {(a.id, True)}
        hits = h.search("borrow check")  # the last word matches as a prefix
        assert [hit.conversation_id for hit in hits] == [a.id]
        assert "[borrow]" in hits[0].snippet
        assert [hit.conversation_id for hit in h.search('apples "AND')] == [b.id]
        assert h.search("   ") == []
        assert h.search("kiwi") == []


def test_search_sees_replies_edited_while_streaming(db: Path) -> None:
    with History(db) as h:
        c = h.create_conversation("q")
        reply_id = h.begin_reply(c.id, None)
        h.save_partial(reply_id, "a partial answer about giraffes", 5)
        h.finish_reply(reply_id, "a final answer about elephants", "complete")
        assert h.search("giraffes") == []
        assert [hit.message_id for hit in h.search("elephants")] == [reply_id]


def test_rename_and_system_prompt_are_stored_and_empty_titles_refused(db: Path) -> None:
    with History(db) as h:
        c = h.create_conversation("old")
        assert h.rename(c.id, "  new\n title ").title == "new title"
        assert h.set_system_prompt(c.id, "Answer in French.").system_prompt == "Answer in French."
        with pytest.raises(HistoryError, match="cannot be empty"):
            h.rename(c.id, "   ")
        assert h.conversation(c.id).title == "new title"


def test_deleting_a_conversation_deletes_its_messages(db: Path) -> None:
    with History(db) as h:
        keep = h.create_conversation("keep")
        drop = h.create_conversation("drop")
        h.add_user_message(keep.id, "k")
        h.add_user_message(drop.id, "d")
        h.delete_conversation(drop.id)
        assert [c.id for c in h.conversations()] == [keep.id]
        assert _raw(db).execute("SELECT count(*) FROM messages").fetchone()[0] == 1
        with pytest.raises(HistoryError, match="not in the history"):
            h.delete_conversation(drop.id)


def test_conversations_are_listed_most_recently_active_first(db: Path) -> None:
    with History(db) as h:
        old = h.create_conversation("old")
        new = h.create_conversation("new")
        h.add_user_message(old.id, "bump")
        assert [c.title for c in h.conversations()] == ["old", "new"]
        assert new.id != old.id


def test_export_writes_markdown_with_route_and_status_and_returns_its_path(db: Path, tmp_path: Path) -> None:
    with History(db) as h:
        c = h.create_conversation("Sorting in Python", system_prompt="Be brief.")
        h.add_user_message(c.id, "How do I sort a list?")
        reply_id = h.begin_reply(c.id, RouteDecision("code", 0.91, "keyword 'list'"))
        h.finish_reply(reply_id, "Use `sorted(xs)`.", "stopped")
        out = h.export_markdown(c.id, tmp_path / "exports")
    assert out.parent == tmp_path / "exports" and out.suffix == ".md"
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Sorting in Python\n")
    assert "> Be brief." in text
    assert "## You\n\nHow do I sort a list?" in text
    assert "## Assistant (modifier: code, confidence 0.91)" in text
    assert "*[stopped by the user]*" in text
    assert "Use `sorted(xs)`." in text
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temp file left behind


def test_export_to_an_unwritable_place_names_the_next_step(db: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with History(db) as h:
        c = h.create_conversation("x")
        with pytest.raises(HistoryError, match="cannot export") as info:
            h.export_markdown(c.id, blocker / "sub")
    assert "/export PATH" in str(info.value)


def test_two_instances_write_concurrently_without_losing_anything(db: Path) -> None:
    History(db).close()
    errors: list[BaseException] = []

    def writer(tag: str) -> None:
        try:
            with History(db) as h:
                c = h.create_conversation(tag)
                for i in range(40):
                    h.add_user_message(c.id, f"{tag} {i}")
                    reply = h.begin_reply(c.id, None)
                    h.save_partial(reply, f"partial {i}", 1)
                    h.finish_reply(reply, f"reply {i}", "complete")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(tag,)) for tag in ("left", "right")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with History(db) as h:
        assert h.integrity_check() == "ok"
        assert sorted(c.title for c in h.conversations()) == ["left", "right"]
        for c in h.conversations():
            assert len(h.messages(c.id)) == 80


def test_a_writer_locked_out_too_long_gets_a_clear_error_and_the_file_stays_intact(db: Path) -> None:
    with History(db) as h:
        c = h.create_conversation("x")
    # Another process holds the write lock for longer than our busy timeout.
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sqlite3, sys, time
        conn = sqlite3.connect({str(db)!r}, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO conversations (title, created_at, updated_at) VALUES ('other', 0, 0)")
        print("locked", flush=True)
        sys.stdin.readline()
        conn.execute("COMMIT")
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with History(db, busy_timeout_s=0.2) as h:
            with pytest.raises(HistoryError, match="locked by another edge-assistant process") as info:
                h.add_user_message(c.id, "blocked")
            assert "close the other chat window" in str(info.value)
            assert [m.content for m in h.messages(c.id)] == []  # reading still works meanwhile
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(10)
    with History(db) as h:
        assert h.integrity_check() == "ok"
        assert sorted(c.title for c in h.conversations()) == ["other", "x"]


def test_a_write_that_sqlite_refuses_is_a_history_error_and_the_store_stays_usable(db: Path) -> None:
    history = History(db)
    try:
        with pytest.raises(HistoryError, match="FOREIGN KEY"):
            history.add_user_message(9999, "a turn for a conversation that does not exist")
        conversation = history.create_conversation("ok")
        stored = history.add_user_message(conversation.id, "still works")
        assert stored.content == "still works"
    finally:
        history.close()
