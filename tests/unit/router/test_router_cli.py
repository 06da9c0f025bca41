"""`edge-assistant route`: one JSON object per prompt, clear errors, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge_assistant.cli import main

pytestmark = pytest.mark.builder


def _run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def test_route_json_prints_the_contract_fields_for_one_prompt(router_bundle: Path, router):
    result = _run("route", "Write a Rust function that parses a CSV line", "--bundle", str(router_bundle), "--json")
    assert result.exit_code == 0, result.output
    obj = json.loads(result.stdout)
    assert set(obj) == {"modifier", "confidence", "reason", "latency_ms"}
    assert obj["modifier"] == "code"
    assert obj["modifier"] == router.route("Write a Rust function that parses a CSV line").modifier
    assert "rust" in obj["reason"]


def test_route_prints_null_for_the_base(router_bundle: Path):
    result = _run("route", "Write a haiku about the first snow", "--bundle", str(router_bundle), "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["modifier"] is None


def test_route_jsonl_answers_each_line_in_order_and_ignores_other_fields(router_bundle: Path, tmp_path: Path):
    batch = tmp_path / "prompts.jsonl"
    batch.write_text("\n".join([
        json.dumps({"prompt": "Solve 4x - 7 = 9", "id": 1}),
        "",
        json.dumps({"prompt": "Add a cron job that rotates my logs every Sunday", "label": "x"}),
        json.dumps({"prompt": "What's a nice gift for my mother?"}),
    ]) + "\n")
    result = _run("route", "--jsonl", str(batch), "--bundle", str(router_bundle))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["modifier"] for r in rows] == ["reasoning", "automation", None]
    assert all(r["latency_ms"] >= 0 for r in rows)


def test_route_jsonl_reads_standard_input(router_bundle: Path):
    result = _run("route", "--jsonl", "-", "--bundle", str(router_bundle),
                  input=json.dumps({"prompt": "How do I reverse a list in Python?"}) + "\n")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["modifier"] == "code"


@pytest.mark.parametrize("line, message", [
    ("not json at all", "prompts.jsonl:2 is not JSON"),
    ('{"text": "no prompt field"}', 'prompts.jsonl:2 has no "prompt" field'),
    ('{"prompt": 42}', 'prompts.jsonl:2: "prompt" must be a string'),
    ('["prompt"]', 'prompts.jsonl:2 has no "prompt" field'),
])
def test_a_bad_jsonl_line_is_a_one_line_error_naming_the_line(router_bundle: Path, tmp_path: Path, line, message):
    batch = tmp_path / "prompts.jsonl"
    batch.write_text(json.dumps({"prompt": "fine"}) + "\n" + line + "\n")
    result = _run("route", "--jsonl", str(batch), "--bundle", str(router_bundle))
    assert result.exit_code == 2
    assert result.stdout == ""  # nothing routed: a partial batch could pass for a complete one
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_route_plain_output_names_the_modifier_and_reason(router_bundle: Path):
    result = _run("route", "Calculate 17% of 340", "--bundle", str(router_bundle))
    assert result.exit_code == 0
    assert result.stdout.startswith("reasoning  ")
    assert "p=" in result.stdout


def test_route_needs_a_prompt_or_a_batch():
    result = _run("route")
    assert result.exit_code == 2
    assert "give either a PROMPT or --jsonl FILE" in result.stderr


def test_a_bundle_without_a_router_routes_everything_to_the_base_and_says_so(router_bundle: Path, tmp_path: Path):
    manifest = json.loads((router_bundle / "manifest.json").read_text())
    manifest["router"] = None
    bundle = tmp_path / "no-router"
    bundle.mkdir()
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    result = _run("route", "fix my python code", "--bundle", str(bundle), "--json")
    assert result.exit_code == 0, result.stderr
    decision = json.loads(result.stdout)
    assert decision["modifier"] is None and "the base answers" in decision["reason"]
    assert "the base answers" in result.stderr


def test_a_bundle_whose_router_folder_is_missing_gets_a_clear_message(router_bundle: Path, tmp_path: Path):
    manifest = json.loads((router_bundle / "manifest.json").read_text())
    bundle = tmp_path / "lost-router"
    bundle.mkdir()
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    result = _run("route", "hello", "--bundle", str(bundle))
    assert result.exit_code == 1
    assert "no router.json" in result.stderr


def test_with_no_bundle_installed_every_prompt_goes_to_the_demo_base(monkeypatch):
    monkeypatch.setenv("EDGE_ASSISTANT_STARTER", "0")  # the demo base alone, not the shipped starter
    result = _run("route", "--jsonl", "-", input='{"prompt": "fix my python code"}\n{"prompt": "hi"}\n')
    assert result.exit_code == 0, result.stderr
    decisions = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["modifier"] for d in decisions] == [None, None]
    assert all("no modifiers" in d["reason"] for d in decisions)
