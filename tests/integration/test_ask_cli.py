"""`edge-assistant ask` as a user runs it: a real subprocess on the real SmolLM2 model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from tests.support.answers import on_topic_capital_answer

pytestmark = pytest.mark.real_model

CLI = [sys.executable, "-m", "edge_assistant.cli"]
# The embedded demo base alone, without the shipped starter bundle that a fresh install uses.
DEMO_ALONE = {"EDGE_ASSISTANT_STARTER": "0"}


def run_cli(*args: str, env_extra: dict[str, str] | None = None, prefix: list[str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, EDGE_ASSISTANT_THREADS="1", **(env_extra or {}))
    return subprocess.run([*(prefix or []), *CLI, *args], capture_output=True, text=True, env=env, timeout=timeout)


def test_ask_json_on_the_embedded_demo_prints_the_contract_fields():
    proc = run_cli("ask", "Which city is the capital of France?", "--temperature", "0", "--max-tokens", "40",
                   "--json", env_extra=DEMO_ALONE)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert {"text", "modifier", "route", "prompt_tokens", "completion_tokens", "finish_reason", "ttft_s",
            "decode_tok_s"} <= out.keys()
    assert on_topic_capital_answer(out["text"])
    assert out["modifier"] is None
    assert out["route"]["modifier"] is None and "base" in out["route"]["reason"]
    assert out["finish_reason"] in ("stop", "length") and out["completion_tokens"] > 0
    # One question, nothing kept before it: the whole prompt was read.
    assert out["kv_state"] == "none" and out["read_tokens"] == out["prompt_tokens"] > 0
    assert "embedded demo model" in proc.stderr  # said once...
    again = run_cli("ask", "hi", "--max-tokens", "2", "--json", env_extra=DEMO_ALONE)
    assert again.returncode == 0 and "embedded demo model" not in again.stderr  # ...and only once


def test_max_tokens_reached_gives_finish_reason_length():
    proc = run_cli("ask", "Tell me a long story about a dragon.", "--max-tokens", "5", "--json")
    out = json.loads(proc.stdout)
    assert (out["finish_reason"], out["completion_tokens"]) == ("length", 5)


def test_ask_streams_plain_text_without_json():
    proc = run_cli("ask", "Say just the word yes.", "--temperature", "0", "--max-tokens", "8")
    assert proc.returncode == 0 and "yes" in proc.stdout.lower()


def test_an_unknown_modifier_is_one_line_on_stderr_and_a_non_zero_exit():
    proc = run_cli("ask", "hi", "--modifier", "code", env_extra=DEMO_ALONE)  # the demo base has no modifiers
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith("edge-assistant: error: unknown modifier 'code'")
    assert "Traceback" not in proc.stderr


@pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare(1) is not installed")
def test_ask_works_with_networking_off_in_a_new_network_namespace():
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("this machine does not allow network namespaces")
    proc = run_cli("ask", "Say just the word yes.", "--max-tokens", "4", "--json", prefix=["unshare", "-n"],
                   env_extra={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["completion_tokens"] > 0
