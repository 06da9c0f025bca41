"""A fake engine with scripted tokens: implements EngineProtocol and honours cancel
between tokens, like the real one. Used by the UI tests and by the subprocess
scripts (so it lives in an importable module, not in conftest)."""

from __future__ import annotations

import threading
import time
from typing import Iterator, Sequence

from edge_assistant.runtime.generation import Generation, GenerationResult, Message, SamplingParams


class ScriptedEngine:
    """Replies with ``tokens`` (one piece per token), ``delay_s`` apart.

    ``calls`` records what each ``generate`` was asked, so tests can check the
    prompt and modifier the app sent. ``gate`` (if set) holds the first token
    until the test releases it, so a test can act while a reply is in flight.
    """

    def __init__(self, tokens: Sequence[str] = ("Hello", ",", " world", "."), *, delay_s: float = 0.0,
                 modifiers: Sequence[str] = ("code", "reasoning", "automation"),
                 gate: threading.Event | None = None, fail_with: Exception | None = None) -> None:
        self.tokens = list(tokens)
        self.delay_s = delay_s
        self._modifiers = tuple(modifiers)
        self.gate = gate
        self.fail_with = fail_with
        self.calls: list[tuple[list[Message], str | None, SamplingParams]] = []
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
            if self.gate is not None:
                self.gate.wait(10)
            first_at = None
            produced: list[str] = []
            for token in self.tokens[: sampling.max_tokens]:
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
