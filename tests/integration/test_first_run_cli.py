"""The command line on a first run, as a user runs it: real subprocesses, one line per failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "edge_assistant.cli"]


def run_cli(*args: str, env_extra: dict[str, str] | None = None, timeout: float = 300
            ) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, EDGE_ASSISTANT_THREADS="1", **(env_extra or {}))
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize("bad", ["/no/such/bundle", "no-such-installed-bundle"])
def test_chat_with_a_bad_bundle_fails_the_way_ask_does(bad: str) -> None:
    chat = one_error_line(run_cli("chat", "--bundle", bad))
    ask = one_error_line(run_cli("ask", "hi", "--bundle", bad))
    assert chat == ask and chat.startswith("edge-assistant: error: ")


def test_chat_with_stdout_not_a_terminal_is_one_line_naming_ask() -> None:
    line = one_error_line(run_cli("chat"))
    assert "needs a terminal" in line and "edge-assistant ask" in line


def test_chat_takes_threads_and_checks_them() -> None:
    assert "needs a terminal" in one_error_line(run_cli("chat", "--threads", "1"))  # parsed, then the tty check
    bad = run_cli("chat", "--threads", "-1")
    assert bad.returncode == 2 and "--threads" in bad.stderr and "Traceback" not in bad.stderr


# Makes the build extra look uninstalled: importing any of its modules fails as it would without it.
_NO_BUILD_EXTRA = textwrap.dedent("""\
    import importlib.abc, sys
    class _Missing(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"torch", "transformers", "peft", "accelerate"}:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
    sys.meta_path.insert(0, _Missing())
    """)


@pytest.mark.parametrize("args", [
    ["build", "recipes/starter.toml", "--out", "{tmp}/out"],
    ["build", "run", "recipes/demo-cpu.toml", "--out", "{tmp}/out"],
])
def test_build_without_the_build_extra_is_one_line_naming_the_install_command(tmp_path: Path, args) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_NO_BUILD_EXTRA)
    root = Path(__file__).resolve().parents[2]
    env = {"PYTHONPATH": os.pathsep.join([str(site), str(root)])}
    proc = subprocess.run([*CLI, *[a.format(tmp=tmp_path) for a in args]], capture_output=True, text=True,
                          env=dict(os.environ, **env), cwd=root, timeout=120)
    line = one_error_line(proc)
    assert "needs the `build` extra" in line and "edge-assistant[build]" in line and "pipx" in line


@pytest.mark.real_model
def test_plain_ask_marks_a_reply_that_max_tokens_cut_off() -> None:
    cut = run_cli("ask", "Tell me a long story about a dragon.", "--modifier", "none", "--max-tokens", "5",
                  "--temperature", "0")
    assert cut.returncode == 0, cut.stderr
    assert "cut off" in cut.stderr and "--max-tokens 5" in cut.stderr
    whole = run_cli("ask", "Say just the word yes.", "--modifier", "none", "--max-tokens", "64",
                    "--temperature", "0", "--json")
    out = json.loads(whole.stdout)
    assert out["finish_reason"] == "stop"
    plain = run_cli("ask", "Say just the word yes.", "--modifier", "none", "--max-tokens", "64", "--temperature", "0")
    assert "cut off" not in plain.stderr


@pytest.mark.real_model
def test_ask_warns_about_a_destructive_command_in_the_reply() -> None:
    prompt = "Repeat this line exactly, with nothing else: sudo rm -rf /var/log"
    plain = run_cli("ask", prompt, "--modifier", "none", "--temperature", "0", "--max-tokens", "40")
    assert plain.returncode == 0, plain.stderr
    assert "rm -rf" in plain.stdout  # the model did repeat it (else this test checks nothing)
    assert "warning: this reply contains a destructive command (`rm -rf`" in plain.stderr
    as_json = run_cli("ask", prompt, "--modifier", "none", "--temperature", "0", "--max-tokens", "40", "--json")
    warnings = json.loads(as_json.stdout)["warnings"]
    assert len(warnings) == 1 and "rm -rf" in warnings[0]
