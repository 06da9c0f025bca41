"""`pull` against a hostile hub: sizes beyond the manifest's, names pull keeps for itself, deep JSON."""

from __future__ import annotations

import json

import pytest

from tests.integration.fakehub import FakeHub
from tests.integration.hubkit import REPO, Cli, error_line


def _gets(hub: FakeHub, name: str) -> list[str]:
    return [r.path for r in hub.requests if r.method == "GET" and r.path.endswith(name)]


def test_a_file_the_hub_says_is_bigger_than_the_manifest_is_never_downloaded(cli: Cli, hub: FakeHub) -> None:
    """Was: a 4.7 KB manifest entry downloaded 40 MB before failing."""
    hub.commit(REPO, {"modifiers/code.gguf": bytes(40 << 20)})

    failed = cli("pull", REPO)

    assert failed.returncode == 1
    line = error_line(failed.stderr)
    assert "modifiers/code.gguf" in line and f"{40 << 20} bytes" in line and "nothing was downloaded" in line
    assert _gets(hub, "code.gguf") == []
    assert not (cli.bundles / "tiny").exists()


@pytest.mark.parametrize("name", [".hub-source.json", ".partial/base.gguf.zst.x.part", "modifiers/code.gguf.partial"])
def test_a_manifest_naming_pulls_own_files_is_refused_before_anything_is_installed(
        cli: Cli, hub: FakeHub, name: str) -> None:
    tree = hub.tree(REPO)
    manifest = json.loads(tree["manifest.json"])
    manifest["modifiers"][0]["file"] = name
    hub.commit(REPO, {"manifest.json": json.dumps(manifest).encode(), name: tree["modifiers/code.gguf"]})

    failed = cli("pull", REPO)

    assert failed.returncode == 1
    line = error_line(failed.stderr)
    assert repr(name) in line and "pull keeps for its own files" in line
    assert [r for r in hub.requests if r.method == "GET" and not r.path.endswith("manifest.json")] == []
    assert not (cli.bundles / "tiny").exists()


def test_a_deeply_nested_pulled_manifest_is_one_line(cli: Cli, hub: FakeHub) -> None:
    """Was: RecursionError from json while reading the downloaded manifest."""
    hub.commit(REPO, {"manifest.json": b'{"provenance": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"})

    failed = cli("pull", REPO)

    assert failed.returncode == 1
    assert "nested more than" in error_line(failed.stderr)
    assert not (cli.bundles / "tiny").exists()
