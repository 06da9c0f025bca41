"""The calculator in the real engine: SmolLM2-135M multiplies wrong by itself ("58 * 9 = 425");
with the calculator, every product it writes out is right, and the conversation goes on from it.

Which of the questions below the model answers with a written-out product depends on the CPU
(greedy decoding follows near-ties in the float sums differently), so each claim is made over
the whole set of questions, never about one reply.
"""

from __future__ import annotations

import re

import pytest

from edge_assistant.runtime import calculator
from edge_assistant.runtime.engine import LlamaEngine
from edge_assistant.runtime.generation import Message
from edge_assistant.sampling import SamplingParams

pytestmark = pytest.mark.real_model

PAIRS = [(47, 8), (36, 7), (58, 9), (123, 6), (64, 13), (29, 17), (84, 6), (73, 12)]
TEMPLATES = [
    "A crate holds {a} apples. How many apples are in {b} crates? Show the multiplication.",
    "What is {a} * {b}? Write it as {a} * {b} = the answer.",
]
QUESTIONS = [t.format(a=a, b=b) for t in TEMPLATES for a, b in PAIRS]
PRODUCT = re.compile(r"(?<![\d.])(\d+) \* (\d+) = (\d+)(?![\d.])")


def sampling(calculator: bool, max_tokens: int = 80) -> SamplingParams:
    return SamplingParams(max_tokens=max_tokens, temperature=0.0, seed=1, calculator=calculator)


@pytest.fixture(scope="module")
def engine(smollm2_gguf):
    with LlamaEngine(smollm2_gguf, threads=1, context_length=1024) as e:
        yield e


def reply(engine: LlamaEngine, question: str, calculator: bool):
    engine.clear_states()          # each reply reads its prompt whole: the same greedy path every time
    gen = engine.generate([Message("user", question)], sampling=sampling(calculator))
    pieces = list(gen)
    return pieces, gen.result


@pytest.fixture(scope="module")
def with_calculator(engine):
    return [reply(engine, q, calculator=True) for q in QUESTIONS]


@pytest.fixture(scope="module")
def without_calculator(engine):
    return [reply(engine, q, calculator=False) for q in QUESTIONS]


def test_every_product_in_the_replies_is_right(with_calculator):
    written = 0
    for pieces, result in with_calculator:
        assert "".join(pieces) == result.text        # what was streamed is the reply, values included
        products = PRODUCT.findall(result.text)
        assert all(int(a) * int(b) == int(c) for a, b, c in products), result.text
        assert result.calculated >= len(products)
        assert result.completion_tokens <= 80
        written += bool(products)
    assert written >= 2, [r.text for _, r in with_calculator]


def test_without_it_the_model_writes_its_own_numbers(without_calculator):
    products = []
    for _, result in without_calculator:
        assert result.calculated == 0
        products += PRODUCT.findall(result.text)
    wrong = [p for p in products if int(p[0]) * int(p[1]) != int(p[2])]
    assert wrong, products


def test_the_next_turn_reads_only_what_is_new(engine):
    """The computed values are in the KV cache as the reply's own tokens: the next turn reuses them."""
    _, first = reply(engine, QUESTIONS[0], calculator=True)
    follow = [Message("user", QUESTIONS[0]), Message("assistant", first.text), Message("user", "And in 9 crates?")]
    second = engine.generate(follow, sampling=sampling(True, max_tokens=8)).run()
    assert second.completion_tokens > 0
    assert second.read_tokens < second.prompt_tokens // 3, (second.read_tokens, second.prompt_tokens)


def test_a_reply_cut_at_max_tokens_stays_within_it(engine, with_calculator):
    """Limits around where the first computed value goes in (its tokens come in one step)."""
    question, pieces = next((q, p) for q, (p, r) in zip(QUESTIONS, with_calculator) if r.calculated)
    # the first piece that is a computed value; before it, each piece is one sampled token
    at = next(i for i in range(1, len(pieces)) if calculator.completion("".join(pieces[:i])) == pieces[i])
    cut_before = 0
    for limit in range(max(1, at - 3), at + 6):
        engine.clear_states()
        result = engine.generate([Message("user", question)], sampling=sampling(True, max_tokens=limit)).run()
        assert result.completion_tokens <= limit
        cut_before += result.calculated == 0
    assert 0 < cut_before < 9           # some limits fall before the value, some after it
