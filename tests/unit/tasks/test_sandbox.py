"""The code sandbox: limits hold, the network is cut, the caller is untouched."""

from __future__ import annotations

import http.server
import threading
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from edge_assistant.builder.sandbox import run_python


@pytest.fixture()
def loopback_server() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 that answers every GET with 200."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"reachable")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_an_infinite_loop_is_killed_within_its_limit() -> None:
    started = time.monotonic()
    result = run_python("while True:\n    pass\n", timeout_s=2)
    elapsed = time.monotonic() - started
    assert not result.ok and result.timed_out
    assert elapsed < 8, elapsed


def test_a_sleeping_child_is_killed_with_its_own_children() -> None:
    started = time.monotonic()
    result = run_python("import subprocess, sys\nsubprocess.run([sys.executable, '-c', 'import time; time.sleep(60)'])\n",
                        timeout_s=2)
    assert not result.ok and time.monotonic() - started < 8


def test_the_network_is_blocked_even_on_loopback(loopback_server: str) -> None:
    with urllib.request.urlopen(loopback_server, timeout=5) as response:  # reachable from the caller
        assert response.read() == b"reachable"
    result = run_python(f"import urllib.request\nprint(urllib.request.urlopen({loopback_server!r}, timeout=5).read())\n",
                        timeout_s=10)
    assert not result.ok and not result.timed_out
    assert "reachable" not in result.output


def test_passing_and_failing_code_are_told_apart() -> None:
    assert run_python("assert sum([1, 2]) == 3\n").ok
    failed = run_python("assert sum([1, 2]) == 4\n")
    assert not failed.ok and "AssertionError" in failed.output


def test_memory_is_limited() -> None:
    result = run_python("x = bytearray(2 * 1024 ** 3)\n", memory_mb=256)
    assert not result.ok and "MemoryError" in result.output


def test_the_code_runs_in_a_temporary_folder_that_is_removed(tmp_path: Path) -> None:
    marker = "import os\nopen('left.txt', 'w').write('x')\nprint(os.getcwd())\n"
    result = run_python(marker)
    assert result.ok
    folder = Path(result.output.strip().splitlines()[-1])
    assert folder.name.startswith("ea-sandbox-") and not folder.exists()
