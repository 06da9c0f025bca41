"""`edge-assistant pull` against a fake hub on 127.0.0.1, through the real huggingface-hub client."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.fakehub import FakeHub
from tests.integration.hubkit import REPO, Cli, error_line, files_of, make_bundle


def _downloads(cli: Cli) -> Path:
    return cli.home / "data" / "downloads"


def test_pull_installs_exactly_the_published_files_and_records_the_commit(cli: Cli, hub: FakeHub) -> None:
    result = cli("pull", REPO)

    assert result.returncode == 0, result.stderr
    installed = cli.bundles / "tiny"
    assert result.stdout.strip() == str(installed)
    published = hub.tree(REPO)
    assert files_of(installed) == {p: published[p] for p in published if p != "REPORT.md"}
    source = json.loads((installed / ".hub-source.json").read_text())
    assert source["repo_id"] == REPO and source["commit"] == hub.repos[REPO].branches["main"]
    leftovers = [p.name for p in _downloads(cli).iterdir()]
    assert leftovers == ["acme--tiny.lock"], "only the lock file may stay after installing"
    assert result.network_attempts == []


def test_a_file_with_the_right_size_and_wrong_bytes_is_deleted_reported_and_nothing_is_installed(
        cli: Cli, hub: FakeHub) -> None:
    hub.corrupt.add("modifiers/code.gguf")

    failed = cli("pull", REPO)

    assert failed.returncode == 1
    line = error_line(failed.stderr)
    assert "modifiers/code.gguf" in line and "sha256" in line and "nothing was installed" in line
    assert f"edge-assistant pull {REPO}` again" in line
    assert not (cli.bundles / "tiny").exists()
    staged = [p.relative_to(_downloads(cli)).as_posix() for p in _downloads(cli).rglob("*") if p.is_file()]
    assert not any(p.endswith("modifiers/code.gguf") for p in staged), staged

    hub.corrupt.clear()
    before = len(hub.requests)
    retried = cli("pull", REPO)

    assert retried.returncode == 0, retried.stderr
    fetched = [r.path for r in hub.requests[before:] if r.method == "GET"]
    assert [p.rsplit("/", 1)[-1] for p in fetched] == ["code.gguf"], "only the deleted file is fetched again"
    assert (cli.bundles / "tiny" / "modifiers" / "code.gguf").read_bytes() == hub.tree(REPO)["modifiers/code.gguf"]


def test_a_connection_dropped_mid_file_gives_a_clear_error_and_a_rerun_resumes(tmp_path: Path) -> None:
    # The hub client writes in 10 MB chunks, so the base must be larger than that to keep a part.
    big = make_bundle(tmp_path / "big", name="big", vocab=49152)
    with FakeHub() as hub:
        hub.publish_folder("acme/big", big)
        cli = Cli(tmp_path, endpoint=hub.url)
        size = len(hub.tree("acme/big")["base.gguf.zst"])
        hub.drop_at["base.gguf.zst"] = size - 500_000

        failed = cli("pull", "acme/big")

        assert failed.returncode == 1
        line = error_line(failed.stderr)
        assert "connection dropped while downloading base.gguf.zst" in line
        assert "again when the connection is back: it resumes" in line
        assert not (cli.bundles / "big").exists()

        hub.drop_at.clear()
        hub.down = False
        before = len(hub.requests)
        resumed = cli("pull", "acme/big")

        assert resumed.returncode == 0, resumed.stderr
        base_gets = [r for r in hub.requests[before:] if r.method == "GET" and r.path.endswith("base.gguf.zst")]
        assert len(base_gets) == 1 and base_gets[0].range is not None
        start = int(base_gets[0].range.removeprefix("bytes=").rstrip("-"))
        assert 0 < start < size
        assert (cli.bundles / "big" / "base.gguf.zst").read_bytes() == hub.tree("acme/big")["base.gguf.zst"]


def test_offline_pull_uses_the_installed_bundle_without_reaching_the_hub(cli: Cli, hub: FakeHub) -> None:
    assert cli("pull", REPO).returncode == 0
    before = len(hub.requests)

    offline = cli("pull", REPO, offline=True)

    assert offline.returncode == 0, offline.stderr
    assert offline.stdout.strip() == str(cli.bundles / "tiny")
    assert "offline" in offline.stderr
    assert len(hub.requests) == before
    assert offline.network_attempts == []


def test_offline_pull_of_a_bundle_never_pulled_says_what_to_do(cli: Cli, hub: FakeHub) -> None:
    result = cli("pull", REPO, offline=True)

    assert result.returncode == 1
    line = error_line(result.stderr)
    assert "neither installed nor in the hub cache" in line
    assert "HF_HUB_OFFLINE=1" in line and "connect once" in line and "--bundle PATH" in line
    assert hub.requests == []
    assert not cli.bundles.exists() or not any(cli.bundles.iterdir())


def _fill_hub_cache(cli: Cli, repo: str, files: list[str]) -> None:
    """What `hf download` leaves behind: huggingface-hub's own cache under HF_HOME."""
    code = ("import sys\nfrom huggingface_hub import hf_hub_download\n"
            "for name in sys.argv[2:]:\n    hf_hub_download(sys.argv[1], name)\n")
    done = subprocess.run([sys.executable, "-c", code, repo, *files], env=cli.env(), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_offline_pull_installs_a_bundle_found_in_the_hub_cache(cli: Cli, hub: FakeHub) -> None:
    _fill_hub_cache(cli, REPO, sorted(hub.tree(REPO)))
    before = len(hub.requests)

    result = cli("pull", REPO, offline=True)

    assert result.returncode == 0, result.stderr
    assert "from the hub cache" in result.stderr
    published = hub.tree(REPO)
    assert files_of(cli.bundles / "tiny") == {p: published[p] for p in published if p != "REPORT.md"}
    assert len(hub.requests) == before and result.network_attempts == []


def test_offline_pull_from_a_partial_hub_cache_installs_nothing(cli: Cli, hub: FakeHub) -> None:
    _fill_hub_cache(cli, REPO, ["manifest.json", "base.gguf.zst"])

    result = cli("pull", REPO, offline=True)

    assert result.returncode == 1
    assert "holds only part of acme/tiny" in error_line(result.stderr)
    assert not (cli.bundles / "tiny").exists()


def test_offline_pull_refuses_an_installed_copy_that_was_damaged_since(cli: Cli, hub: FakeHub) -> None:
    assert cli("pull", REPO).returncode == 0
    routes = cli.bundles / "tiny" / "router" / "routes.json"
    routes.write_text(routes.read_text().replace("python", "pythoN"))

    result = cli("pull", REPO, offline=True)

    assert result.returncode == 1
    line = error_line(result.stderr)
    assert "router/routes.json" in line and "damaged" in line


def test_a_new_commit_on_the_hub_replaces_the_installed_copy(cli: Cli, hub: FakeHub, tmp_path: Path) -> None:
    assert cli("pull", REPO).returncode == 0
    newer = make_bundle(tmp_path / "newer" / "tiny", seed=7)
    commit = hub.publish_folder(REPO, newer)

    result = cli("pull", REPO)

    assert result.returncode == 0, result.stderr
    installed = cli.bundles / "tiny"
    assert (installed / "base.gguf.zst").read_bytes() == (newer / "base.gguf.zst").read_bytes()
    assert json.loads((installed / ".hub-source.json").read_text())["commit"] == commit
    assert sorted(p.name for p in cli.bundles.iterdir()) == ["tiny"], "no leftover of the old copy"


@pytest.mark.parametrize(("repo", "expected"), [
    ("acme/missing", "was not found"),
    ("acme/notabundle", "is not an edge-assistant bundle"),
])
def test_pulling_a_repository_that_holds_no_bundle_fails_with_a_next_step(cli: Cli, hub: FakeHub,
                                                                          repo: str, expected: str) -> None:
    hub.create_repo("acme/notabundle")
    hub.commit("acme/notabundle", {"README.md": b"# not a bundle\n"})

    result = cli("pull", repo)

    assert result.returncode == 1
    line = error_line(result.stderr)
    assert expected in line and " — " in line
    assert not cli.bundles.exists() or not any(cli.bundles.iterdir())


def test_an_unknown_revision_is_reported_as_such(cli: Cli) -> None:
    result = cli("pull", REPO, "--revision", "v9")

    assert result.returncode == 1
    assert "has no revision 'v9'" in error_line(result.stderr)


def test_pull_never_replaces_a_different_bundle_of_the_same_name(cli: Cli, hub: FakeHub, tmp_path: Path) -> None:
    local = make_bundle(cli.bundles / "tiny", seed=11)   # built here, not pulled
    before = files_of(local)

    result = cli("pull", REPO)

    assert result.returncode == 1
    line = error_line(result.stderr)
    assert "another bundle named 'tiny'" in line and "not pulled from a hub" in line
    assert files_of(local) == before
    gets = [r.path for r in hub.requests if r.method == "GET"]
    assert [g.rsplit("/", 1)[-1] for g in gets] == ["manifest.json"], "refused before downloading the bundle"


def test_a_second_pull_of_the_same_repository_is_refused_while_the_first_runs(cli: Cli, hub: FakeHub) -> None:
    from filelock import FileLock

    downloads = _downloads(cli)
    downloads.mkdir(parents=True)
    with FileLock(str(downloads / "acme--tiny.lock")):
        result = cli("pull", REPO)

    assert result.returncode == 1
    assert "another `edge-assistant pull acme/tiny` is running" in error_line(result.stderr)
    assert not (cli.bundles / "tiny").exists()
