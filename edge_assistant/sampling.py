"""Sampling parameters and their defaults: the one owner of how a reply is sampled."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SamplingParams:
    """How a reply is sampled. These defaults are the only ones: the settings' defaults are
    read from them, and ask, chat and serve start from the settings (``from_settings``)."""

    max_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int | None = None
    repeat_penalty: float = 1.1          # small models loop without it; 1.0 is off
    top_k: int = 40                      # not settings: llama.cpp's usual values
    min_p: float = 0.05
    calculator: bool = True              # a sum the reply writes out gets its value computed (runtime/calculator.py)

    @classmethod
    def from_settings(cls, settings: Any) -> "SamplingParams":
        """The user's sampling settings; ask, chat and serve all start from these."""
        return cls(max_tokens=settings.max_tokens, temperature=settings.temperature, top_p=settings.top_p,
                   seed=settings.seed, repeat_penalty=settings.repeat_penalty)


DEFAULT_SAMPLING = SamplingParams()
