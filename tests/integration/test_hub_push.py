"""`edge-assistant bundle push` to a fake hub on 127.0.0.1, and back with `pull`."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_assistant.bundle.verify import verify_bundle
from tests.integration.fakehub import FakeHub
from tests.integration.hubkit import Cli, files_of, make_bundle


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("built") / "tiny", seed=3)


@pytest.fixture
def hub():
    with FakeHub() as hub:
        yield hub


def test_push_then_pull_round_trips_a_bundle_byte_for_byte(built: Path, hub: FakeHub, tmp_path: Path) -> None:
    publisher = Cli(tmp_path / "publisher", endpoint=hub.url)

    pushed = publisher("bundle", "push", str(built), "acme/round-trip")

    assert pushed.returncode == 0, pushed.stderr
    commit = hub.repos["acme/round-trip"].branches["main"]
    assert pushed.stdout.strip() == f"{hub.url}/acme/round-trip/commit/{commit}"
    assert hub.tree("acme/round-trip") == files_of(built), "one commit with every file, REPORT.md included"

    user = Cli(tmp_path / "user", endpoint=hub.url)
    pulled = user("pull", "acme/round-trip")

    assert pulled.returncode == 0, pulled.stderr
    installed = Path(pulled.stdout.strip())
    expected = {p: data for p, data in files_of(built).items() if p != "REPORT.md"}
    assert files_of(installed) == expected
    assert verify_bundle(installed, deep=True).manifest.name == "tiny"
    assert pushed.network_attempts == [] and pulled.network_attempts == []


def test_push_to_a_branch_and_pull_that_revision(built: Path, hub: FakeHub, tmp_path: Path) -> None:
    cli = Cli(tmp_path, endpoint=hub.url)
    assert cli("bundle", "push", str(built), "acme/branched", "--revision", "v1").returncode == 0

    repo = hub.repos["acme/branched"]
    assert hub.tree("acme/branched", "main") == {}, "main stays as it was"
    result = cli("pull", "acme/branched", "--revision", "v1")

    assert result.returncode == 0, result.stderr
    assert (cli.bundles / "tiny" / "base.gguf.zst").read_bytes() == repo.commits[repo.branches["v1"]]["base.gguf.zst"]


def test_push_refuses_a_bundle_that_no_longer_matches_its_manifest(built: Path, hub: FakeHub,
                                                                   tmp_path: Path) -> None:
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(built, damaged)
    lora = damaged / "modifiers" / "code.gguf"
    data = bytearray(lora.read_bytes())
    data[-1] ^= 0xFF
    lora.write_bytes(bytes(data))

    result = Cli(tmp_path, endpoint=hub.url)("bundle", "push", str(damaged), "acme/damaged")

    assert result.returncode == 1
    assert "modifiers/code.gguf" in result.stderr and "nothing was uploaded" in result.stderr
    assert "Traceback" not in result.stderr
    assert hub.repos == {} and hub.requests == [], "the hub is not contacted for a bad bundle"


def test_push_offline_is_refused_before_any_upload(built: Path, hub: FakeHub, tmp_path: Path) -> None:
    result = Cli(tmp_path, endpoint=hub.url)("bundle", "push", str(built), "acme/offline", offline=True)

    assert result.returncode == 1
    assert "HF_HUB_OFFLINE=1" in result.stderr and "unset HF_HUB_OFFLINE" in result.stderr
    assert hub.requests == []
