"""From a base GGUF and an adapter to an answer, the way a user runs it:
`bundle create` → `bundle verify` → `ask` (unpacks once) → `ask` again (reuses)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from edge_assistant.hashing import sha256_file
from tests.support.lora import write_random_lora

pytestmark = pytest.mark.real_model


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_assistant.cli", *args], capture_output=True, text=True,
                          env=dict(os.environ, EDGE_ASSISTANT_THREADS="1", **(env or {})), timeout=600)


@pytest.fixture(scope="module")
def bundle(smollm2_gguf, tmp_path_factory):
    root = tmp_path_factory.mktemp("bundle-e2e")
    sha = sha256_file(smollm2_gguf)
    code = write_random_lora(root / "code.gguf", smollm2_gguf, base_sha256=sha, seed=3, scale=0.05)
    stranger = write_random_lora(root / "stranger.gguf", smollm2_gguf, base_sha256=sha, seed=4, scale=0.05)
    out = root / "demo-bundle"
    made = cli("bundle", "create", "--base", str(smollm2_gguf), "--modifier", f"code={code}",
               "--modifier", f"stranger={stranger}", "--level", "1", "--out", str(out))
    assert made.returncode == 0, made.stderr
    return out


def test_a_created_bundle_verifies_and_answers_with_the_chosen_modifier_unpacking_only_once(bundle, edge_home):
    verified = cli("bundle", "verify", str(bundle))
    assert verified.returncode == 0, verified.stderr

    first = cli("ask", "Write a Python function that adds two numbers.", "--bundle", str(bundle),
                "--modifier", "code", "--max-tokens", "8", "--temperature", "0", "--json")
    assert first.returncode == 0, first.stderr
    out = json.loads(first.stdout)
    assert out["modifier"] == "code" and out["route"]["modifier"] == "code"
    assert out["completion_tokens"] > 0

    manifest = json.loads((bundle / "manifest.json").read_text())
    unpacked = edge_home / "cache" / "bases" / f"{manifest['base']['sha256']}.gguf"
    assert unpacked.stat().st_size == manifest["base"]["size"]
    assert sha256_file(unpacked) == manifest["base"]["sha256"]
    before = unpacked.stat()

    second = cli("ask", "hi", "--bundle", str(bundle), "--modifier", "none", "--max-tokens", "4", "--json")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["modifier"] is None
    after = unpacked.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), "the base was unpacked again"


def test_auto_without_a_router_answers_with_the_base_and_says_why(bundle):
    proc = cli("ask", "hi", "--bundle", str(bundle), "--max-tokens", "4", "--json")
    out = json.loads(proc.stdout)
    assert out["modifier"] is None and "router" in out["route"]["reason"]


def test_a_modifier_whose_manifest_binding_was_tampered_is_refused_and_the_base_answers(bundle, tmp_path):
    tampered = tmp_path / "tampered"
    shutil.copytree(bundle, tampered)
    manifest = json.loads((tampered / "manifest.json").read_text())
    for m in manifest["modifiers"]:
        if m["name"] == "stranger":
            m["base_sha256"] = "f" * 64
    (tampered / "manifest.json").write_text(json.dumps(manifest))
    base = cli("ask", "Name a colour.", "--bundle", str(tampered), "--modifier", "none", "--max-tokens", "8",
               "--temperature", "0", "--json")
    refused = cli("ask", "Name a colour.", "--bundle", str(tampered), "--modifier", "stranger", "--max-tokens", "8",
                  "--temperature", "0", "--json")
    assert refused.returncode == 0, refused.stderr
    out = json.loads(refused.stdout)
    assert out["modifier"] is None
    assert "trained on another base" in refused.stderr
    assert out["text"] == json.loads(base.stdout)["text"]


def test_the_base_alone_answers_the_same_under_each_spelling(bundle):
    ask = ("ask", "Name a colour.", "--bundle", str(bundle), "--max-tokens", "8", "--temperature", "0", "--json")
    runs = [cli(*ask, "--modifier", "base"), cli(*ask, "--modifier", "none"),
            cli(*ask, env={"EDGE_ASSISTANT_MODIFIER": "none"})]   # the setting, in its old spelling
    answers = []
    for proc in runs:
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        answers.append((out["modifier"], out["route"]["modifier"], out["route"]["reason"], out["text"]))
    assert answers[0][:2] == (None, None) and len(set(answers)) == 1


def test_a_bad_modifier_name_is_one_line_naming_the_bundles_modifiers(bundle):
    proc = cli("ask", "hi", "--bundle", str(bundle), "--modifier", "nosuch", "--max-tokens", "2")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1
    assert "unknown modifier 'nosuch'" in errors[0] and "code, stranger" in errors[0]


def test_the_environment_variable_selects_the_bundle(bundle):
    proc = cli("ask", "hi", "--modifier", "code", "--max-tokens", "2", "--json",
               env={"EDGE_ASSISTANT_BUNDLE": str(bundle)})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["modifier"] == "code"


def test_the_newest_installed_bundle_is_used_when_none_is_named(bundle, edge_home):
    installed = edge_home / "data" / "bundles" / "mine"
    shutil.copytree(bundle, installed)
    proc = cli("ask", "hi", "--modifier", "code", "--max-tokens", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["modifier"] == "code"
