"""The calculator in the real engine: SmolLM2-135M multiplies wrong by itself ("47 * 8 = 326");
with the calculator, every product it writes out is right, and the conversation goes on from it."""

from __future__ import annotations

import re

import pytest

from edge_assistant.runtime.engine import LlamaEngine
from edge_assistant.runtime.generation import Message
from edge_assistant.sampling import SamplingParams

pytestmark = pytest.mark.real_model

QUESTION = [Message("user", "A crate holds 47 apples. How many apples are in 8 crates? Show the multiplication.")]
PRODUCT = re.compile(r"(?<![\d.])(\d+) \* (\d+) = (\d+)(?![\d.])")


def sampling(calculator: bool, max_tokens: int = 80) -> SamplingParams:
    return SamplingParams(max_tokens=max_tokens, temperature=0.0, seed=1, calculator=calculator)


@pytest.fixture(scope="module")
def engine(smollm2_gguf):
    with LlamaEngine(smollm2_gguf, threads=1, context_length=1024) as e:
        yield e


def reply(engine: LlamaEngine, calculator: bool):
    engine.clear_states()          # each reply reads its prompt whole: the same greedy path every time
    gen = engine.generate(QUESTION, sampling=sampling(calculator))
    pieces = list(gen)
    return "".join(pieces), gen.result


def test_every_product_in_the_reply_is_right(engine):
    streamed, result = reply(engine, calculator=True)
    assert streamed == result.text            # what was streamed is the reply, values included
    products = PRODUCT.findall(result.text)
    assert products, result.text
    assert all(int(a) * int(b) == int(c) for a, b, c in products), result.text
    assert result.calculated >= len(products)
    assert result.completion_tokens <= 80


def test_without_it_the_model_writes_its_own_numbers(engine):
    _, result = reply(engine, calculator=False)
    assert result.calculated == 0
    products = PRODUCT.findall(result.text)
    assert products and not all(int(a) * int(b) == int(c) for a, b, c in products), result.text


def test_the_next_turn_reads_only_what_is_new(engine):
    """The computed values are in the KV cache as the reply's own tokens: the next turn reuses them."""
    _, first = reply(engine, calculator=True)
    follow = QUESTION + [Message("assistant", first.text), Message("user", "And in 9 crates?")]
    second = engine.generate(follow, sampling=sampling(True, max_tokens=8)).run()
    assert second.completion_tokens > 0
    assert second.read_tokens < second.prompt_tokens // 3, (second.read_tokens, second.prompt_tokens)


def test_a_reply_cut_at_max_tokens_stays_within_it(engine):
    """The first "=" is the reply's 34th token; the value and the token after it are 5 more."""
    for limit in range(33, 42):
        engine.clear_states()
        result = engine.generate(QUESTION, sampling=sampling(True, max_tokens=limit)).run()
        assert result.completion_tokens <= limit
