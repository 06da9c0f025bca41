"""The bundle commands through the CLI, and finding bundles by name or path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge_assistant import paths
from edge_assistant.bundle.discovery import find_bundle, installed_bundles
from edge_assistant.cli import main
from edge_assistant.errors import BundleError
from tests.support.bundles import file_sha256, small_base
from tests.support.lora import write_random_lora

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def base(tmp_path: Path, smollm2_gguf: Path) -> Path:
    return small_base(tmp_path / "base.gguf", smollm2_gguf)


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def _install(base: Path, name: str, *extra: str) -> Path:
    code, out, err = _run("bundle", "create", "--base", str(base), "--out", str(paths.bundles_dir() / name), *extra)
    assert code == 0, err
    return Path(out.strip())


def test_create_then_verify_info_and_list_an_installed_bundle(base: Path, tmp_path: Path, smollm2_gguf: Path) -> None:
    adapter = write_random_lora(tmp_path / "code.gguf", smollm2_gguf, rank=4, base_sha256=file_sha256(base))
    path = _install(base, "demo", "--modifier", f"code={adapter}", "--description", "code=Writes Python",
                    "--level", "1")
    assert path == paths.bundles_dir() / "demo"

    code, out, _ = _run("bundle", "verify", "demo")
    assert code == 0 and out.startswith("ok: demo: 2 files and unpacked base match the manifest")
    code, out, _ = _run("bundle", "verify", str(path), "--quick", "--json")
    assert json.loads(out) == {"bundle": str(path), "name": "demo", "ok": True, "deep": False,
                               "files": ["base.gguf.zst", "modifiers/code.gguf"], "warnings": [], "cached_base": "absent"}

    code, out, _ = _run("bundle", "info", "demo", "--json")
    info = json.loads(out)
    assert info["base"]["sha256"] == file_sha256(base)
    assert [(m["name"], m["rank"], m["description"]) for m in info["modifiers"]] == [("code", 4, "Writes Python")]
    code, out, _ = _run("bundle", "info", "demo")
    assert "code  rank 4, alpha 32" in out and "Writes Python" in out and "not unpacked yet" in out

    code, out, _ = _run("bundle", "list", "--json")
    listed = json.loads(out)
    assert [(b["name"], b["modifiers"]) for b in listed["bundles"]] == [("demo", ["code"])]


def test_bind_unverified_binds_an_unbound_adapter_to_this_base(base: Path, tmp_path: Path, smollm2_gguf: Path) -> None:
    adapter = write_random_lora(tmp_path / "a.gguf", smollm2_gguf, rank=2)
    code, _, err = _run("bundle", "create", "--base", str(base), "--modifier", f"a={adapter}",
                        "--out", str(tmp_path / "b"))
    assert code == 1 and "--bind-unverified" in err and not (tmp_path / "b").exists()
    code, _, err = _run("bundle", "create", "--base", str(base), "--modifier", f"a={adapter}", "--bind-unverified",
                        "--out", str(tmp_path / "b"))
    assert code == 0, err
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["modifiers"][0]["base_sha256"] == file_sha256(base)


def test_list_is_newest_first_and_skips_a_broken_bundle_with_a_warning(base: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    old = _install(base, "old")
    new = _install(base, "new")
    os.utime(old / "manifest.json", (1_000_000_000, 1_000_000_000))
    os.utime(new / "manifest.json", (2_000_000_000, 2_000_000_000))
    broken = paths.bundles_dir() / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    assert [p.name for p, _ in installed_bundles()] == ["new", "old"]
    assert [r.levelname for r in caplog.records if "broken" in r.getMessage()] == ["WARNING"]
    code, out, err = _run("bundle", "list")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == ["new", "old"]
    assert "warning: skipped" in err and "broken" in err


def test_find_bundle_by_folder_path_folder_name_or_manifest_name(base: Path, tmp_path: Path) -> None:
    installed = _install(base, "folder-name", "--name", "manifest-name")
    assert find_bundle("folder-name") == installed
    assert find_bundle("manifest-name") == installed
    assert find_bundle(str(installed)) == installed
    with pytest.raises(BundleError, match=r"no bundle named 'other' \(installed: folder-name\)"):
        find_bundle("other")
    with pytest.raises(BundleError, match="bundle folder .*missing does not exist"):
        find_bundle(str(tmp_path / "missing"))
    with pytest.raises(BundleError, match="is not a bundle"):
        find_bundle(str(tmp_path))


@pytest.mark.parametrize("args, code, message", [
    (["bundle", "verify", "nowhere"], 1, "no bundle named 'nowhere' (installed: none)"),
    (["bundle", "create", "--base", "x.gguf", "--modifier", "code", "--out", "b"], 2, "is not NAME=VALUE"),
    (["bundle", "create", "--base", "missing.gguf", "--out", "b"], 2, "base model missing.gguf does not exist"),
])
def test_errors_are_one_line_with_the_next_step(args: list[str], code: int, message: str) -> None:
    exit_code, out, err = _run(*args)
    assert exit_code == code
    assert err.count("\n") == 1 and err.startswith("edge-assistant: error: ") and message in err
    assert " — " in err  # the next step follows the dash


def test_a_corrupt_bundle_fails_verify_in_a_real_process_without_a_traceback(base: Path, tmp_path: Path) -> None:
    bundle = _install(base, "demo")
    with open(bundle / "base.gguf.zst", "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02")
    proc = subprocess.run([sys.executable, "-m", "edge_assistant.cli", "bundle", "verify", "demo"],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 1
    assert proc.stderr.startswith("edge-assistant: error: base.gguf.zst has sha256")
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_an_installed_name_wins_over_a_local_folder_that_is_not_a_bundle(base: Path, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    installed = _install(base, "demo")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()  # e.g. a source folder that happens to share the name
    assert find_bundle("demo") == installed
    with pytest.raises(BundleError, match="is not a bundle"):
        find_bundle("./demo")


STARTER_ROUTER = REPO / "edge_assistant" / "starter" / "router"


def test_bundle_create_records_the_routers_fitted_threshold_unless_one_is_given(base: Path, tmp_path: Path) -> None:
    fitted = json.loads((STARTER_ROUTER / "router.json").read_text(encoding="utf-8"))["threshold"]
    code, out, err = _run("bundle", "create", "--base", str(base), "--router", str(STARTER_ROUTER),
                          "--out", str(tmp_path / "fitted"))
    assert code == 0, err
    assert json.loads((tmp_path / "fitted" / "manifest.json").read_text())["router"]["threshold"] == fitted
    code, _, err = _run("bundle", "create", "--base", str(base), "--router", str(STARTER_ROUTER),
                        "--router-threshold", "0.75", "--out", str(tmp_path / "given"))
    assert code == 0, err
    assert json.loads((tmp_path / "given" / "manifest.json").read_text())["router"]["threshold"] == 0.75


def test_bundle_create_refuses_a_router_whose_router_json_is_damaged(base: Path, tmp_path: Path) -> None:
    import shutil

    router = tmp_path / "router"
    shutil.copytree(STARTER_ROUTER, router)
    config = json.loads((router / "router.json").read_text(encoding="utf-8"))
    (router / "router.json").write_text(json.dumps({**config, "threshold": "high"}), encoding="utf-8")
    code, _, err = _run("bundle", "create", "--base", str(base), "--router", str(router), "--out", str(tmp_path / "b"))
    assert code == 1
    assert "'threshold' must be a number" in err and "Traceback" not in err
    assert not (tmp_path / "b").exists()
