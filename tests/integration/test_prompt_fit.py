"""Fitting a long conversation into the window (runtime/prompt.py), on the real SmolLM2 tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_assistant.runtime.engine import LlamaEngine
from edge_assistant.runtime.generation import Message
from edge_assistant.runtime.prompt import MIN_REPLY_TOKENS, PromptFitter, Tokenizer

MAX_TOKENS = 128


@pytest.fixture(scope="module")
def engine(smollm2_gguf: Path):
    with LlamaEngine(smollm2_gguf, context_length=1024, threads=1) as engine:
        yield engine


def _conversation(n: int, words: int = 300) -> list[Message]:
    messages = [Message("system", "Be brief.")]
    for i in range(n):
        text = " ".join(f"w{(i * 7 + j) % 97}" for j in range(words))
        messages.append(Message("user" if i % 2 == 0 else "assistant", f"turn {i}: {text}"))
    return messages


class _Counting:
    """The engine's tokenizer, counting the characters it is asked to tokenize."""

    def __init__(self, engine: LlamaEngine) -> None:
        self.engine = engine
        self.chars = 0

    def fitter(self) -> PromptFitter:
        base = self.engine._prompt

        def count(fn):
            def counted(text: str) -> list[int]:
                self.chars += len(text)
                return fn(text)
            return counted

        tok = Tokenizer(prompt=count(base.tokenizer.prompt), text=count(base.tokenizer.text),
                        detokenize=base.tokenizer.detokenize)
        return PromptFitter(base.template, tok, base.n_ctx, base.control)


def _budget(engine: LlamaEngine) -> int:
    return engine.n_ctx - max(min(MAX_TOKENS, engine.n_ctx // 2), MIN_REPLY_TOKENS)


@pytest.mark.parametrize("n", [3, 10, 41, 120])
def test_the_prompt_is_the_newest_turns_that_fit_and_one_more_turn_would_not(engine: LlamaEngine, n: int) -> None:
    messages = _conversation(n)
    tokens, dropped, notices = engine.build_prompt(messages, MAX_TOKENS)
    turns = messages[1:]
    kept = turns[dropped:]
    assert kept and kept[0].role == "user" or len(kept) == 1
    assert tokens == engine.tokenize(engine.template.render([messages[0], *kept]))
    assert len(tokens) <= _budget(engine)
    earlier = [i for i in range(dropped) if turns[i].role == "user" or i == 0]
    if earlier:   # the next older start the prompt could have had does not fit
        start = earlier[-1]
        assert len(engine.tokenize(engine.template.render([messages[0], *turns[start:]]))) > _budget(engine)
    assert bool(notices) == bool(dropped)


def test_the_work_follows_the_window_not_the_length_of_the_conversation(engine: LlamaEngine) -> None:
    """Was quadratic: every dropped turn re-rendered and re-tokenized the whole conversation."""
    work = {}
    for n in (40, 400):
        counting = _Counting(engine)
        counting.fitter().fit(_conversation(n), MAX_TOKENS)
        work[n] = counting.chars
    window_chars = sum(len(m.content) for m in _conversation(40))   # far more than the window holds
    assert work[400] <= work[40] * 1.5, work
    assert work[400] < window_chars, work


def test_a_lone_surrogate_in_a_message_becomes_a_replacement_character(engine: LlamaEngine) -> None:
    """Was: UnicodeEncodeError from the tokenizer ("\\ud800" is valid JSON but not encodable as UTF-8)."""
    tokens, _, _ = engine.build_prompt([Message("system", "x\udfff"), Message("user", "hi \ud800 there")],
                                       MAX_TOKENS)
    expected = engine.tokenize(engine.template.render([Message("system", "x\ufffd"),
                                                       Message("user", "hi \ufffd there")]))
    assert tokens == expected


def test_a_single_message_longer_than_the_window_is_cut_to_its_end(engine: LlamaEngine) -> None:
    long = " ".join(f"w{i}" for i in range(4000)) + " the end"
    tokens, dropped, notices = engine.build_prompt([Message("user", long)], MAX_TOKENS)
    assert dropped == 0 and len(tokens) <= _budget(engine)
    assert "the end" in engine._llm.detokenize(tokens).decode("utf-8", "replace")
    assert any("only its last" in n for n in notices)
