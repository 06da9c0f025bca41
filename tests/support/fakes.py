"""Fakes for the chat app's and the chat turn's tests: an engine with scripted tokens
(implements EngineProtocol and honours cancel between tokens, like the real one)
and a router with a fixed answer. Importable (not in conftest) because the
subprocess scripts use them too."""

from __future__ import annotations

import threading
import time
from typing import Iterator, Sequence

from edge_assistant.router.decision import RouteDecision
from edge_assistant.runtime.generation import Generation, GenerationResult, Message
from edge_assistant.sampling import SamplingParams


class ScriptedEngine:
    """Replies with ``tokens`` (one piece per token), ``delay_s`` apart.

    ``calls`` records what each ``generate`` was asked, so tests can check the
    prompt and modifier the app sent. ``gate`` (if set) holds token number
    ``hold_at`` (the first, by default) until the test sets it, so a test can
    look at the app while a reply is in flight.
    """

    def __init__(self, tokens: Sequence[str] = ("Hello", ",", " world", "."), *, delay_s: float = 0.0,
                 modifiers: Sequence[str] = ("code", "reasoning", "automation"),
                 gate: threading.Event | None = None, hold_at: int = 0,
                 fail_with: Exception | None = None) -> None:
        self.tokens = list(tokens)
        self.delay_s = delay_s
        self._modifiers = tuple(modifiers)
        self.gate = gate
        self.hold_at = hold_at
        self.fail_with = fail_with
        self.calls: list[tuple[list[Message], str | None, SamplingParams]] = []
        self.produced = 0          # tokens yielded by the latest generation so far
        self.closed = False

    @property
    def modifier_names(self) -> Sequence[str]:
        return self._modifiers

    @property
    def description(self) -> str:
        return "scripted test engine"

    def generate(self, messages: Sequence[Message], *, modifier: str | None = None,
                 sampling: SamplingParams = SamplingParams()) -> Generation:
        self.calls.append((list(messages), modifier, sampling))
        result = GenerationResult(modifier=modifier, prompt_tokens=sum(len(m.content.split()) for m in messages))

        def pieces(generation: Generation) -> Iterator[str]:
            started = time.perf_counter()
            first_at = None
            produced: list[str] = []
            self.produced = 0
            for index, token in enumerate(self.tokens[: sampling.max_tokens]):
                if self.gate is not None and index == self.hold_at:
                    self.gate.wait(10)
                if generation.cancelled:
                    result.finish_reason = "cancelled"
                    break
                if self.fail_with is not None and len(produced) == 2:
                    raise self.fail_with
                if self.delay_s:
                    time.sleep(self.delay_s)
                if generation.cancelled:  # the real engine checks again after each decode
                    result.finish_reason = "cancelled"
                    break
                if first_at is None:
                    first_at = time.perf_counter()
                    result.ttft_s = first_at - started
                produced.append(token)
                self.produced = len(produced)
                result.completion_tokens = len(produced)
                result.text = "".join(produced)
                yield token
            else:
                result.finish_reason = "length" if len(self.tokens) > sampling.max_tokens else "stop"
            if first_at is not None and len(produced) > 1:
                result.decode_tok_s = (len(produced) - 1) / max(time.perf_counter() - first_at, 1e-9)

        return Generation(pieces, result)

    def close(self) -> None:
        self.closed = True


class FixedRouter:
    """Routes every message to ``modifier`` with a fixed confidence and reason."""

    def __init__(self, modifier: str | None = "code", confidence: float = 0.83,
                 reason: str = "keywords 'python', 'function'") -> None:
        self.decision = RouteDecision(modifier, confidence, reason, 0.1)
        self.previous: list[str | None] = []

    def route(self, prompt: str, *, previous: str | None = None) -> RouteDecision:
        self.previous.append(previous)
        return self.decision
