"""A chat app in its own process, for the crash and two-instance tests.

    python -m tests.tui.chat_process HISTORY_DB MESSAGE [--tokens N] [--delay S]

Runs the real app headless (Textual's pilot) on HISTORY_DB with a scripted
engine that streams slowly, sends MESSAGE, and prints ``streaming`` once the
partial reply is visible in the database from another connection, then
``done`` when the reply is complete. It then waits for a line on stdin before
quitting, so the test decides when this instance lets go of the database (or
kills it).
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
from pathlib import Path

from edge_assistant.runtime.assistant import Assistant
from edge_assistant.runtime.assistant_handle import AssistantHandle
from edge_assistant.runtime.history import History
from edge_assistant.settings import Settings
from edge_assistant.tui.app import make_app
from tests.support.fakes import ScriptedEngine


def script(n_tokens: int) -> list[str]:
    """The reply the engine streams: numbered words, so a prefix is easy to check."""
    return [f"w{i} " for i in range(n_tokens)]


def _reply_visible(db: Path) -> bool:
    conn = sqlite3.connect(str(db))
    try:
        row = conn.execute("SELECT length(content) FROM messages WHERE role = 'assistant' "
                           "ORDER BY id DESC LIMIT 1").fetchone()
    finally:
        conn.close()
    return bool(row and row[0])


async def run(db: Path, message: str, n_tokens: int, delay_s: float) -> int:
    engine = ScriptedEngine(script(n_tokens), delay_s=delay_s)
    with History(db) as history:
        model = AssistantHandle.loaded(Assistant(engine, None, "subprocess"))
        app = make_app(Settings(max_tokens=n_tokens), model, history)
        async with app.run_test() as pilot:
            screen = app.chat_screen
            screen.prompt.value = message
            await pilot.press("enter")
            while not _reply_visible(db):
                await pilot.pause(0.02)
            print("streaming", flush=True)
            while screen.turn is not None or not list(screen.transcript.query("ReplyView")):
                await pilot.pause(0.02)
            print("done", flush=True)
            await asyncio.to_thread(sys.stdin.readline)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("db", type=Path)
    parser.add_argument("message")
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--delay", type=float, default=0.01)
    args = parser.parse_args(argv)
    return asyncio.run(run(args.db, args.message, args.tokens, args.delay))


if __name__ == "__main__":
    sys.exit(main())
