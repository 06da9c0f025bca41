"""Kept conversation states per adapter configuration, and aLoRA modifiers, on real llama.cpp.

References come from llama-cpp-python directly (tests/support/llama_ref.py) or from a second
engine that never switched, so a state reused under the wrong adapter (llama.cpp #26207) shows.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

from edge_assistant.hashing import sha256_file
from edge_assistant.runtime.engine import LlamaEngine
from edge_assistant.runtime.generation import Message
from edge_assistant.sampling import SamplingParams
from edge_assistant.runtime.kvstate import KEPT, MB, NO_STATE, RESTORED, SHARED, common_prefix
from edge_assistant.runtime.alora import invocation_start
from edge_assistant.runtime.modifier import ModifierSpec
from tests.support.llama_ref import reference_logits
from tests.support.lora import write_random_lora

pytestmark = pytest.mark.real_model

CTX = 1024
SYSTEM = Message("system", "You are a helpful assistant. Answer briefly and precisely.")
TURN1 = [SYSTEM, Message("user", "I keep a small vegetable garden on my balcony. Which herbs grow well in pots, "
                                 "and how often should I water them in summer?")]
REPLY1 = ("Basil, parsley, chives, mint and thyme all grow well in pots. Water them when the top "
          "centimetre of soil is dry, which in summer is usually every day or two.")
TURN2 = TURN1 + [Message("assistant", REPLY1),
                 Message("user", "Now write a Python function that returns the herbs sorted by name.")]
GREEDY = SamplingParams(max_tokens=8, temperature=0.0)


@pytest.fixture(scope="module")
def base_sha(smollm2_gguf):
    return sha256_file(smollm2_gguf)


@pytest.fixture(scope="module")
def invocation(smollm2_gguf):
    """The tokens that open an assistant turn in SmolLM2's template, as the aLoRA builder sets them."""
    with LlamaEngine(smollm2_gguf, threads=1, context_length=256) as e:
        return e.tokenize("<|im_start|>assistant\n")


@pytest.fixture(scope="module")
def files(smollm2_gguf, base_sha, invocation, tmp_path_factory):
    folder = tmp_path_factory.mktemp("kv-adapters")
    return {
        "a": write_random_lora(folder / "a.gguf", smollm2_gguf, base_sha256=base_sha, seed=11, scale=0.05),
        "b": write_random_lora(folder / "b.gguf", smollm2_gguf, base_sha256=base_sha, seed=12, scale=0.05),
        "stranger": write_random_lora(folder / "s.gguf", smollm2_gguf, base_sha256="0" * 64, seed=13, scale=0.05),
        "al": write_random_lora(folder / "al.gguf", smollm2_gguf, base_sha256=base_sha, seed=14, scale=0.05,
                                invocation_tokens=invocation),
        "al2": write_random_lora(folder / "al2.gguf", smollm2_gguf, base_sha256=base_sha, seed=15, scale=0.05,
                                 invocation_tokens=invocation),
        "al_never": write_random_lora(folder / "aln.gguf", smollm2_gguf, base_sha256=base_sha, seed=16,
                                      scale=0.05, invocation_tokens=[1, 1, 1, 1]),
    }


@pytest.fixture(scope="module")
def specs(files, base_sha):
    out = {name: ModifierSpec(name, path, base_sha, kind="alora" if name.startswith("al") else "lora")
           for name, path in files.items() if name != "stranger"}
    out["stranger"] = ModifierSpec("stranger", files["stranger"], "0" * 64)
    out["fake_alora"] = ModifierSpec("fake_alora", files["a"], base_sha, kind="alora")
    return out


def make_engine(smollm2_gguf, base_sha, specs, kv_state_mb=1024):
    return LlamaEngine(smollm2_gguf, base_sha256=base_sha, modifiers=specs, threads=1, context_length=CTX,
                       kv_state_mb=kv_state_mb)


def turn(engine, messages, modifier=None):
    return engine.generate(messages, modifier=modifier, sampling=GREEDY).run()


def test_after_a_b_a_the_logits_under_a_equal_an_engine_that_never_left_a_and_differ_from_b(
        smollm2_gguf, base_sha, specs):
    """llama.cpp #26207: a state must never be reused under another adapter configuration."""
    with make_engine(smollm2_gguf, base_sha, specs) as only_a:
        only_a.next_token_logits(TURN1, modifier="a")
        expected = only_a.next_token_logits(TURN2, modifier="a")
    with make_engine(smollm2_gguf, base_sha, specs) as only_b:
        only_b.next_token_logits(TURN1, modifier="b")
        under_b = only_b.next_token_logits(TURN2, modifier="b")
    with make_engine(smollm2_gguf, base_sha, specs) as engine:
        engine.next_token_logits(TURN1, modifier="a")
        engine.next_token_logits(TURN1, modifier="b")
        assert [label for label, _, _ in engine.kv_states()] == ["'a'"]
        got = engine.next_token_logits(TURN2, modifier="a")
    assert np.array_equal(got, expected), "the state kept for 'a' was not exactly what 'a' computed"
    assert np.abs(got - under_b).max() > 0.5, "the two adapters are too alike for this test to see a mix-up"
    assert np.abs(got - under_b).max() > 100 * np.abs(got - expected).max()


def test_switching_back_reads_only_what_the_kept_state_lacks(smollm2_gguf, base_sha, specs):
    with make_engine(smollm2_gguf, base_sha, specs) as engine:
        first = turn(engine, TURN1, "a")
        assert first.kv_state == NO_STATE and first.read_tokens == first.prompt_tokens
        turn(engine, TURN1, "b")
        (kept,) = [s for s in engine.states.states() if s.key.label == "'a'"]
        tokens1, _, _ = engine.build_prompt(TURN1, GREEDY.max_tokens)
        tokens, _, _ = engine.build_prompt(TURN2, GREEDY.max_tokens)
        back = turn(engine, TURN2, "a")
    assert back.kv_state == RESTORED and back.modifier == "a"
    reused = common_prefix(kept.tokens, tokens)
    assert reused >= len(tokens1), "the first turn's whole prompt should have been reused"
    assert back.read_tokens == len(tokens) - reused


def test_past_kv_state_mb_the_least_recently_used_state_is_dropped_with_a_notice(smollm2_gguf, base_sha, specs):
    with make_engine(smollm2_gguf, base_sha, specs, kv_state_mb=2) as engine:
        turn(engine, TURN1)              # the base
        turn(engine, TURN1, "a")         # keeps the base's state
        ((label, _, size),) = engine.kv_states()
        assert label == "the base"
        assert size <= 2 * MB < 2 * size, "the prompt does not size the states for this budget"
        third = turn(engine, TURN1, "b")  # keeping a's state must drop the base's
        assert [label for label, _, _ in engine.kv_states()] == ["'a'"]
        assert any("dropped" in n and "the base" in n for n in third.notices), third.notices
        assert engine.states.nbytes <= 2 * MB
        again = turn(engine, TURN1)
        assert again.kv_state == NO_STATE and again.read_tokens == again.prompt_tokens


def test_a_state_larger_than_kv_state_mb_is_not_kept_and_the_notice_says_how_to_keep_it(
        smollm2_gguf, base_sha, specs):
    with make_engine(smollm2_gguf, base_sha, specs, kv_state_mb=1) as engine:
        turn(engine, TURN1)
        switched = turn(engine, TURN1, "a")
        assert engine.kv_states() == []
        assert any("larger than kv_state_mb" in n and "raise kv_state_mb" in n for n in switched.notices)


def test_a_modifier_refused_for_its_binding_never_leaves_a_state(smollm2_gguf, base_sha, specs, files):
    stranger_sha = sha256_file(files["stranger"])
    with make_engine(smollm2_gguf, base_sha, specs) as engine:
        refused = turn(engine, TURN1, "stranger")
        assert refused.modifier is None and any("another base" in n for n in refused.notices)
        turn(engine, TURN1, "a")          # switching away saves whatever answered the refused turn
        again = turn(engine, TURN1, "stranger")
        assert again.modifier is None and again.kv_state == RESTORED   # the base's state, not its own
        turn(engine, TURN1, "b")
        keys = [s.key for s in engine.states.states()]
    assert keys and all(k.adapter_sha256 != stranger_sha for k in keys)
    assert all(k.label != "'stranger'" for k in keys)


def test_close_frees_every_state(smollm2_gguf, base_sha, specs):
    engine = make_engine(smollm2_gguf, base_sha, specs)
    for modifier in (None, "a", "b", None):
        turn(engine, TURN1, modifier)
    buffers = [weakref.ref(s.data) for s in engine.states.states()]
    assert len(buffers) == 2
    engine.close()
    gc.collect()
    assert engine.kv_states() == [] and engine.states.nbytes == 0
    assert all(ref() is None for ref in buffers), "a snapshot buffer outlived close()"


def test_an_alora_turn_reads_only_its_invocation_on_the_bases_kept_state(smollm2_gguf, base_sha, specs,
                                                                         invocation):
    with make_engine(smollm2_gguf, base_sha, specs) as engine:
        turn(engine, TURN1)
        alora = turn(engine, TURN1, "al")
        other = turn(engine, TURN1, "al2")
        back = turn(engine, TURN1)
    assert alora.modifier == "al" and alora.kv_state == SHARED
    assert alora.read_tokens == len(invocation)
    assert other.kv_state == SHARED and other.read_tokens == len(invocation)
    assert back.modifier is None and back.kv_state == KEPT and back.read_tokens == len(invocation)


def test_alora_logits_equal_the_base_up_to_the_invocation_then_the_adapter(smollm2_gguf, base_sha, specs, files,
                                                                          invocation):
    with make_engine(smollm2_gguf, base_sha, specs) as engine:
        tokens, _, _ = engine.build_prompt(TURN2, 16)
        split = invocation_start(tokens, invocation)
        assert split is not None and split + len(invocation) == len(tokens)
        engine.next_token_logits(TURN1, modifier="a")      # another configuration in between
        got = engine.next_token_logits(TURN2, modifier="al")
        base = engine.next_token_logits(TURN2)
    expected = reference_logits(smollm2_gguf, [(tokens[:split], None), (tokens[split:], files["al"])], n_ctx=CTX)
    whole = reference_logits(smollm2_gguf, [(tokens, files["al"])], n_ctx=CTX)
    assert np.array_equal(got, expected)
    assert np.abs(got - whole).max() > 0.5, "applied to the whole prompt, it should differ: the test sees nothing"
    assert np.abs(got - base).max() > 0.5


def test_the_next_turn_after_an_alora_reply_rereads_that_reply_under_the_base(smollm2_gguf, base_sha, specs,
                                                                           invocation):
    with make_engine(smollm2_gguf, base_sha, specs) as engine:
        turn(engine, TURN1, "al")
        tokens1, _, _ = engine.build_prompt(TURN1, GREEDY.max_tokens)
        split1 = invocation_start(tokens1, invocation)
        nxt = turn(engine, TURN2, "al")
        tokens2, _, _ = engine.build_prompt(TURN2, GREEDY.max_tokens)
    assert nxt.kv_state == SHARED
    assert nxt.read_tokens == len(tokens2) - common_prefix(tokens1[:split1], tokens2)


def test_an_alora_whose_invocation_is_not_in_the_prompt_leaves_the_base_to_answer(smollm2_gguf, base_sha, specs):
    with make_engine(smollm2_gguf, base_sha, specs) as engine:
        base = turn(engine, TURN1)
        result = turn(engine, TURN1, "al_never")
    assert result.modifier is None and result.text == base.text
    assert any("no invocation" in n for n in result.notices)


def test_a_modifier_declared_alora_without_invocation_tokens_is_refused(smollm2_gguf, base_sha, specs):
    with make_engine(smollm2_gguf, base_sha, specs) as engine:
        result = turn(engine, TURN1, "fake_alora")
    assert result.modifier is None
    assert any("adapter.alora.invocation_tokens" in n and "rebuild" in n for n in result.notices)


def test_with_kv_state_mb_zero_nothing_is_kept_and_switching_back_reads_everything(smollm2_gguf, base_sha, specs):
    with make_engine(smollm2_gguf, base_sha, specs, kv_state_mb=0) as engine:
        turn(engine, TURN1, "a")
        turn(engine, TURN1, "b")
        back = turn(engine, TURN1, "a")
        assert engine.kv_states() == []
    assert back.kv_state == NO_STATE and back.read_tokens == back.prompt_tokens and not back.notices


def test_catch_up_extends_the_other_kept_states_exactly_as_if_they_had_read_it_themselves(
        smollm2_gguf, base_sha, specs):
    answered = TURN1 + [Message("assistant", REPLY1)]
    with make_engine(smollm2_gguf, base_sha, specs) as only_a:
        only_a.next_token_logits(TURN1, modifier="a")
        only_a.next_token_logits(answered, modifier="a")     # reads the reply in the piece catch-up reads
        expected = only_a.next_token_logits(TURN2, modifier="a")
    with make_engine(smollm2_gguf, base_sha, specs) as engine:
        engine.next_token_logits(TURN1, modifier="a")
        engine.next_token_logits(TURN1, modifier="b")        # b answered (REPLY1, say): a's state lags
        (lagging,) = [s for s in engine.states.states() if s.key.label == "'a'"]
        target, _, _ = engine.build_prompt(answered, 16)
        read = engine.catch_up(answered)
        assert read == len(target) - common_prefix(lagging.tokens, target) > 1
        engine.catch_up(answered)   # now b's state, saved when a's became the working one
        assert engine.catch_up(answered) == 0, "every kept state has read it: nothing left to read"
        got = engine.next_token_logits(TURN2, modifier="a")
    assert np.array_equal(got, expected)


def test_after_catch_up_switching_back_reads_only_the_new_question(smollm2_gguf, base_sha, specs):
    with make_engine(smollm2_gguf, base_sha, specs) as engine:
        turn(engine, TURN1, "a")
        b = turn(engine, TURN1, "b")
        answered = TURN1 + [Message("assistant", b.text)]
        engine.catch_up(answered)
        question = [Message("user", "And which one needs the most sun?")]
        after, _, _ = engine.build_prompt(answered, 16)
        back = turn(engine, answered + question, "a")
        full, _, _ = engine.build_prompt(answered + question, GREEDY.max_tokens)
    assert back.kv_state in (KEPT, RESTORED)   # catch-up may leave a's state the working one
    assert back.read_tokens == len(full) - common_prefix(after, full)


def test_catch_up_leaves_a_gap_longer_than_its_limit_and_does_nothing_once_closed(smollm2_gguf, base_sha, specs):
    engine = make_engine(smollm2_gguf, base_sha, specs)
    engine.next_token_logits(TURN1, modifier="a")
    engine.next_token_logits(TURN1, modifier="b")
    assert engine.catch_up(TURN2, max_tokens=4) == 0
    engine.close()
    assert engine.catch_up(TURN2) == 0
