"""The switch-cost measurement the evaluate stage runs (builder/switch_eval.py), on real llama.cpp.

What it reports must be what the engine did: the tokens each turn read. A LoRA's first
switch reads the conversation again; switching back reuses the kept state; an aLoRA
switch reads only what follows the base prefix the two aLoRAs share. Ratios are timing
and not asserted here (benchmarks/switch_cost.py prints them).
"""

from __future__ import annotations

import pytest

from edge_assistant.builder.report import _switch_lines
from edge_assistant.builder.switch_eval import conversation, measure_switch_cost, plan
from edge_assistant.hashing import sha256_file
from edge_assistant.runtime.engine import LlamaEngine
from tests.support.lora import random_modifiers

pytestmark = pytest.mark.real_model

TOKENS = 300


@pytest.fixture(scope="module")
def engine(smollm2_gguf, tmp_path_factory):
    sha = sha256_file(smollm2_gguf)
    folder = tmp_path_factory.mktemp("switch-adapters")
    specs = random_modifiers(folder, smollm2_gguf, {"lx": "lora", "ly": "lora", "ax": "alora", "ay": "alora"},
                             base_sha256=sha, seed=40, scale=0.05)
    with LlamaEngine(smollm2_gguf, base_sha256=sha, modifiers=specs, threads=1, context_length=TOKENS + 512) as e:
        yield e


def _reads(cost) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for t in cost.turns:
        out.setdefault(t["turn"], []).append(t["read_tokens"])
    return out


def test_the_conversation_reaches_its_size_and_stops_when_the_window_is_full(engine) -> None:
    assert len(engine.build_prompt(conversation(engine, TOKENS), 64)[0]) >= TOKENS
    # More than the window holds: the oldest turns are dropped, and the builder stops instead of looping.
    assert len(engine.build_prompt(conversation(engine, 10 * TOKENS), 64)[0]) < 10 * TOKENS


def test_lora_first_switch_reads_the_conversation_and_switching_back_reuses_the_kept_state(engine) -> None:
    cost = measure_switch_cost(engine, "lx", ["ly"], tokens=TOKENS, reply_tokens=8)
    assert [t["turn"] for t in cost.turns] == [what for what, _who in plan("lx", ["ly"])]
    assert cost.kind == "lora" and cost.tokens >= TOKENS
    reads = _reads(cost)
    assert reads["first read"][0] == cost.tokens
    assert reads["switch"][0] >= 0.9 * cost.tokens          # no state for ly yet: everything again
    assert reads["switch back"][0] < 0.25 * cost.tokens     # lx's kept state: only what is new
    assert max(reads["same"]) < 0.25 * cost.tokens
    assert cost.states_mb > 0


def test_alora_switch_reads_only_what_follows_the_shared_base_prefix(engine) -> None:
    cost = measure_switch_cost(engine, "ax", ["ay", None], tokens=TOKENS, reply_tokens=8)
    assert cost.kind == "alora"
    reads = _reads(cost)
    assert reads["first read"][0] == cost.tokens
    assert max(reads["switch"]) < 0.25 * cost.tokens       # to ay, then to the base: the shared prefix
    assert max(reads["switch back"]) < 0.25 * cost.tokens


def test_a_mixed_bundle_pays_one_read_for_its_lora_and_none_for_the_base_after_an_alora(engine) -> None:
    cost = measure_switch_cost(engine, "ax", ["lx", None], tokens=TOKENS, reply_tokens=8)
    assert cost.kind == "alora/lora" and cost.ys == ("lx", "base")
    switches = [t for t in cost.turns if t["turn"] == "switch"]
    assert [t["modifier"] for t in switches] == ["lx", "base"]
    assert switches[0]["read_tokens"] >= 0.9 * cost.tokens   # the LoRA: no kept state yet
    assert switches[1]["read_tokens"] < 0.25 * cost.tokens   # the base: ax's shared prefix


def test_a_single_modifier_switches_with_the_base_and_the_report_shows_every_turn(engine) -> None:
    cost = measure_switch_cost(engine, "lx", [None], tokens=TOKENS, reply_tokens=8)
    assert cost.ys == ("base",) and [t["modifier"] for t in cost.turns] == ["lx", "lx", "base", "lx", "lx"]
    text = "\n".join(_switch_lines(cost.to_dict()))
    assert "Kind: **lora**" in text and f"{cost.tokens}-token conversation" in text
    for t in cost.turns:
        assert f"| {t['turn']} | {t['modifier']} | {t['read_tokens']} |" in text
    assert "first switch to it reads the whole conversation" in text
