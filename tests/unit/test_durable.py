"""Durable writes: an error or a killed process never leaves a half file or folder under the final name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_assistant.durable import atomic_file, atomic_folder, swap_folder, temp_glob, write_bytes, write_text

REPO_ROOT = Path(__file__).resolve().parents[2]


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _old_folder(path: Path) -> dict[str, bytes]:
    (path / "sub").mkdir(parents=True)
    (path / "config.json").write_text('{"old": true}\n')
    (path / "sub" / "weights.bin").write_bytes(b"\x01" * 4096)
    (path / "stale.txt").write_text("only the old folder has this\n")
    return _tree(path)


def _child(code: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env)


def _wait_for(check, child: subprocess.Popen[bytes], what: str, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert child.poll() is None, f"the child exited ({child.returncode}) before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_an_error_while_writing_keeps_the_old_file_and_removes_the_temp(tmp_path: Path) -> None:
    final = tmp_path / "model.gguf"
    final.write_bytes(b"old model")

    with pytest.raises(OSError, match="disk full"):
        with atomic_file(final) as temp, open(temp, "wb") as out:
            out.write(b"half of a new mod")
            raise OSError("disk full")

    assert final.read_bytes() == b"old model"
    assert _hidden(tmp_path) == []


def test_a_writer_killed_mid_stream_leaves_the_old_file_under_the_final_name(tmp_path: Path) -> None:
    final = tmp_path / "model.gguf"
    final.write_bytes(b"old model")
    child = _child(
        "import sys, time\n"
        "from pathlib import Path\n"
        "from edge_assistant.durable import atomic_file\n"
        "with atomic_file(Path(sys.argv[1])) as temp, open(temp, 'wb') as out:\n"
        "    while True:\n"
        "        out.write(b'n' * 65536); out.flush(); time.sleep(0.01)\n", str(final))
    try:
        _wait_for(lambda: any(p.stat().st_size >= 1 << 20 for p in tmp_path.glob(temp_glob(final))),
                  child, "1 MiB of the new file was written")
        assert final.read_bytes() == b"old model", "nothing reaches the final name before the end"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()

    assert final.read_bytes() == b"old model"
    leftovers = list(tmp_path.glob(temp_glob(final)))
    assert len(leftovers) == 1 and leftovers[0].name.startswith("."), "what the killed writer left is a hidden temp"


def test_a_completed_write_replaces_the_content_with_the_usual_mode(tmp_path: Path) -> None:
    final = tmp_path / "deep" / "notes.md"
    old_umask = os.umask(0o027)
    try:
        write_text(final, "first\n")
        write_text(final, "second, ünïcode\n")
    finally:
        os.umask(old_umask)

    assert final.read_text(encoding="utf-8") == "second, ünïcode\n"
    assert final.stat().st_mode & 0o777 == 0o640, "mkstemp's private 0600 must not leak into the result"
    assert write_bytes(tmp_path / "raw.bin", b"\x00\xff") == tmp_path / "raw.bin"
    assert (tmp_path / "raw.bin").read_bytes() == b"\x00\xff"
    assert _hidden(final.parent) == [] and _hidden(tmp_path) == []


def test_a_folder_write_that_fails_midway_leaves_the_old_folder_intact(tmp_path: Path) -> None:
    final = tmp_path / "model"
    before = _old_folder(final)

    with pytest.raises(RuntimeError, match="save_pretrained failed"):
        with atomic_folder(final) as temp:
            (temp / "config.json").write_text('{"new": true}\n')
            (temp / "sub").mkdir()
            (temp / "sub" / "weights.bin").write_bytes(b"\x02" * 100)   # a half-written shard
            raise RuntimeError("save_pretrained failed")

    assert _tree(final) == before
    assert _hidden(tmp_path) == []


def test_a_folder_writer_killed_midway_leaves_the_old_folder_intact(tmp_path: Path) -> None:
    final = tmp_path / "model"
    before = _old_folder(final)
    child = _child(
        "import sys, time\n"
        "from pathlib import Path\n"
        "from edge_assistant.durable import atomic_folder\n"
        "with atomic_folder(Path(sys.argv[1])) as temp:\n"
        "    (temp / 'config.json').write_text('{\"new\": true}')\n"
        "    (temp / 'ready').write_text('')\n"
        "    time.sleep(600)\n", str(final))
    try:
        _wait_for(lambda: any((p / "ready").exists() for p in tmp_path.glob(temp_glob(final))),
                  child, "the new folder was half written")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()

    assert _tree(final) == before


def test_a_completed_folder_replaces_the_old_one_whole(tmp_path: Path) -> None:
    final = tmp_path / "model"
    _old_folder(final)

    with atomic_folder(final) as temp:
        (temp / "config.json").write_text('{"new": true}\n')
        (temp / "sub").mkdir()
        (temp / "sub" / "weights.bin").write_bytes(b"\x02" * 4096)

    assert _tree(final) == {"config.json": b'{"new": true}\n', "sub/weights.bin": b"\x02" * 4096}
    assert _hidden(tmp_path) == [], "the old folder and the temp folder are gone"


def test_a_swap_whose_new_folder_cannot_be_renamed_in_puts_the_old_one_back(tmp_path: Path) -> None:
    final = tmp_path / "bundle"
    before = _old_folder(final)

    with pytest.raises(FileNotFoundError):
        swap_folder(tmp_path / ".never-written", final)

    assert _tree(final) == before
    assert _hidden(tmp_path) == []
