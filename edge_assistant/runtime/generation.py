"""Small value types shared by the engine, the chat app, ``ask`` and ``serve``."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Iterator, Literal, Protocol, Sequence

from ..sampling import SamplingParams

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length", "cancelled"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass
class GenerationResult:
    """What one reply cost and why it ended; filled in when the stream ends."""

    text: str = ""
    modifier: str | None = None          # the modifier that was applied (None: the base alone)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: FinishReason = "stop"
    ttft_s: float = 0.0                  # request start to the first token
    decode_tok_s: float = 0.0            # tokens/s after the first token
    dropped_turns: int = 0               # older turns left out to fit the context window
    read_tokens: int = 0                 # prompt tokens computed this turn (the rest came from a kept state)
    kv_state: str = ""                   # how the prompt was read: kept, restored, shared or none (runtime/kvstate.py)
    calculated: int = 0                  # sums whose value was computed and read in (runtime/calculator.py)
    notices: list[str] = field(default_factory=list)


class Generation:
    """An iterator of text pieces; ``result`` is complete once iteration ends.

    ``cancel()`` (from any thread) makes the engine stop between tokens; the
    text so far is kept and ``finish_reason`` becomes ``"cancelled"``.
    """

    def __init__(self, pieces: Callable[["Generation"], Iterator[str]], result: GenerationResult) -> None:
        self.result = result
        self._cancel = threading.Event()
        self._iter = pieces(self)

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        return next(self._iter)

    def cancel(self) -> None:
        self._cancel.set()

    def close(self) -> None:
        """Stop early and release the engine (safe to call more than once)."""
        self._cancel.set()
        close = getattr(self._iter, "close", None)
        if close is not None:
            close()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def run(self) -> GenerationResult:
        """Consume the whole stream and return the result."""
        for _ in self:
            pass
        return self.result


class EngineProtocol(Protocol):
    """What the chat app, ``ask`` and ``serve`` need from an engine (the real one
    wraps llama.cpp; tests of the UI use a fake with scripted tokens)."""

    @property
    def modifier_names(self) -> Sequence[str]: ...

    @property
    def description(self) -> str: ...

    def generate(self, messages: Sequence[Message], *, modifier: str | None = None,
                 sampling: SamplingParams = SamplingParams()) -> Generation: ...

    def close(self) -> None: ...
