"""The runtime commands never reach past loopback, even when nobody told them to stay offline.

Each command runs in a child process whose ``sitecustomize`` (tests/integration/
netguard) refuses and logs any connection or name lookup that would leave the
machine. No HF_HUB_OFFLINE, no HF_HUB_DISABLE_TELEMETRY: the defaults a user has.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.fakehub import FakeHub
from tests.integration.hubkit import NETGUARD_DIR, Cli, make_bundle


class PlainCli(Cli):
    """The CLI with a user's default environment: no hub variables, nothing forced offline."""

    def env(self, *, offline: bool = False, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = super().env(offline=offline)
        for var in ("HF_HUB_DISABLE_TELEMETRY", "HF_HUB_DISABLE_PROGRESS_BARS", "HF_ENDPOINT"):
            env.pop(var, None)
        env.update(extra or {})
        return env


def test_the_guard_refuses_and_logs_connections_that_would_leave_the_machine(tmp_path: Path) -> None:
    log = tmp_path / "guard.log"
    code = ("import socket\n"
            "for attempt in (lambda: socket.getaddrinfo('example.invalid', 443),\n"
            "                lambda: socket.socket().connect(('example.invalid', 443))):\n"
            "    try:\n"
            "        attempt()\n"
            "    except ConnectionRefusedError as exc:\n"
            "        print(exc)\n"
            "    else:\n"
            "        raise SystemExit('not refused')\n")
    env = {"PYTHONPATH": str(NETGUARD_DIR), "EDGE_NETGUARD_LOG": str(log), "PATH": "/usr/bin:/bin"}

    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("netguard:") == 2
    assert len(log.read_text().splitlines()) == 2


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> PlainCli:
    """A home with one bundle pulled from a hub on loopback (the hub is gone afterwards)."""
    tmp = tmp_path_factory.mktemp("runtime")
    bundle = make_bundle(tmp / "src" / "tiny")
    cli = PlainCli(tmp / "user")
    with FakeHub() as hub:
        hub.publish_folder("acme/tiny", bundle)
        pulled = cli("pull", "acme/tiny", extra_env={"HF_ENDPOINT": hub.url})
    assert pulled.returncode == 0, pulled.stderr
    return cli


@pytest.mark.parametrize("args", [
    ["--version"],
    ["--help"],
    ["paths", "--json"],
    ["bundle", "list"],
    ["bundle", "info", "tiny"],
    ["bundle", "verify", "tiny"],
    ["doctor"],
    ["serve", "--help"],
], ids=" ".join)
def test_runtime_command_makes_no_connection_beyond_loopback(installed: PlainCli, args: list[str]) -> None:
    result = installed(*args)

    assert result.returncode == 0, result.stderr
    assert result.network_attempts == []


def test_pull_with_the_hub_unreachable_and_offline_set_uses_the_installed_bundle(installed: PlainCli) -> None:
    result = installed("pull", "acme/tiny", offline=True)

    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == installed.bundles / "tiny"
    assert result.network_attempts == []


@pytest.mark.real_model
def test_ask_answers_from_the_embedded_demo_model_with_no_network(tmp_path: Path) -> None:
    cli = PlainCli(tmp_path)   # a fresh home: no bundle installed, so the embedded SmolLM2 answers

    result = cli("ask", "Name a colour.", "--max-tokens", "8", "--temperature", "0", "--seed", "1", "--json")

    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["completion_tokens"] > 0 and answer["text"].strip()
    assert result.network_attempts == []
