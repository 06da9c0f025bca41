"""Hot-swapping LoRA modifiers on the real SmolLM2 base through llama.cpp."""

from __future__ import annotations

import numpy as np
import pytest

from edge_assistant.hashing import sha256_file
from edge_assistant.runtime.engine import LlamaEngine
from edge_assistant.runtime.generation import Message
from edge_assistant.sampling import SamplingParams
from edge_assistant.runtime.modifier import ModifierSpec
from tests.support.llama_ref import reference_logits
from tests.support.lora import write_random_lora

pytestmark = pytest.mark.real_model

PROMPT = [Message("user", "Write a Python function that reverses a string.")]


@pytest.fixture(scope="module")
def base_sha(smollm2_gguf):
    return sha256_file(smollm2_gguf)


@pytest.fixture(scope="module")
def adapters(smollm2_gguf, base_sha, tmp_path_factory):
    folder = tmp_path_factory.mktemp("adapters")
    good = write_random_lora(folder / "code.gguf", smollm2_gguf, rank=16, base_sha256=base_sha, seed=1, scale=0.05)
    other = write_random_lora(folder / "other.gguf", smollm2_gguf, rank=8, base_sha256="0" * 64, seed=2, scale=0.05)
    return {
        "code": ModifierSpec("code", good, base_sha),
        "stranger": ModifierSpec("stranger", other, "0" * 64),
    }


@pytest.fixture(scope="module")
def engine(smollm2_gguf, base_sha, adapters):
    with LlamaEngine(smollm2_gguf, base_sha256=base_sha, modifiers=adapters, threads=1, context_length=512) as e:
        yield e


def test_a_modifier_changes_the_logits_and_switching_back_restores_the_base_exactly(engine, smollm2_gguf,
                                                                                   adapters):
    base = engine.next_token_logits(PROMPT)
    with_code = engine.next_token_logits(PROMPT, modifier="code")
    assert not np.allclose(base, with_code, atol=1e-3), "the adapter had no effect"
    # Back to the base: its kept state holds the whole prompt, so the last token is read again on it.
    # llama.cpp's CPU results depend slightly on how a prompt is cut into batches on some CPUs
    # (AVX2 without AMX, here), so the reference reads it in the same two pieces.
    tokens, _, _ = engine.build_prompt(PROMPT, 16)
    again = engine.next_token_logits(PROMPT)
    expected_base = reference_logits(smollm2_gguf, [(tokens[:-1], None), (tokens[-1:], None)], n_ctx=engine.n_ctx)
    assert np.array_equal(expected_base, again), "stale cache: logits after switching back are not the base's"
    code = adapters["code"].path
    expected = reference_logits(smollm2_gguf, [(tokens[:-1], code), (tokens[-1:], code)], n_ctx=engine.n_ctx)
    assert np.array_equal(expected, engine.next_token_logits(PROMPT, modifier="code"))


def test_generation_with_a_modifier_reports_it_and_differs_from_the_base(engine):
    greedy = SamplingParams(max_tokens=16, temperature=0.0)
    base = engine.generate(PROMPT, sampling=greedy).run()
    coded = engine.generate(PROMPT, modifier="code", sampling=greedy).run()
    assert coded.modifier == "code" and base.modifier is None
    assert coded.text != base.text
    back = engine.generate(PROMPT, sampling=greedy).run()
    assert back.text == base.text


def test_a_modifier_bound_to_another_base_is_refused_and_the_base_answers(engine):
    greedy = SamplingParams(max_tokens=12, temperature=0.0)
    base = engine.generate(PROMPT, sampling=greedy).run()
    refused = engine.generate(PROMPT, modifier="stranger", sampling=greedy).run()
    assert refused.modifier is None
    assert any("trained on another base" in n for n in refused.notices)
    assert refused.text == base.text
