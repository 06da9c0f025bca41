"""Progress bars appear on a terminal's stderr and nowhere else."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from edge_assistant.progress import byte_progress

REPO = Path(__file__).resolve().parents[2]

_DRAW = """
import time
from edge_assistant.progress import byte_progress
with byte_progress("unpacking demo", 4_000_000) as advance:
    for _ in range(4):
        advance(1_000_000)
        time.sleep(0.05)
"""


def test_no_bar_is_drawn_when_stderr_is_not_a_terminal(capsys) -> None:
    with byte_progress("unpacking demo", 100) as advance:
        advance(60)
        advance(40)
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "")


def test_a_bar_is_drawn_on_a_terminal(tmp_path: Path) -> None:
    leader, follower = os.openpty()
    proc = subprocess.Popen([sys.executable, "-c", _DRAW], cwd=REPO, stderr=follower, stdout=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(REPO), "TERM": "xterm", "COLUMNS": "100"})
    os.close(follower)  # the child holds the only other end: reading ends (EIO) when it exits
    drawn = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        drawn += chunk
    os.close(leader)
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and stdout == b""
    text = drawn.decode(errors="replace")
    assert "unpacking demo" in text
    assert "4.0/4.0 MB" in text  # the bar reached its total
