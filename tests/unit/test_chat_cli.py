"""`edge-assistant chat` refuses a broken history with one line, before any screen is drawn."""

from __future__ import annotations

from click.testing import CliRunner

from edge_assistant import paths
from edge_assistant.cli import main


def test_chat_with_an_unusable_history_file_prints_one_line_and_exits_non_zero() -> None:
    db = paths.history_db()
    db.parent.mkdir(parents=True, exist_ok=True)
    db.write_bytes(b"not a database " * 200)
    result = CliRunner().invoke(main, ["chat"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "not a usable chat history" in lines[0] and "move the file aside" in lines[0]
    assert "Traceback" not in result.output
    assert db.read_bytes() == b"not a database " * 200
