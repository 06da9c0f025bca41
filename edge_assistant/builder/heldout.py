"""Held-out NLL of a base GGUF, alone and with each GGUF adapter, measured through llama.cpp.

This scores the files that ship (the quantized base and the converted
adapters), not the PyTorch models they came from, so the number in REPORT.md
is what a user gets. Adapters are applied with the low-level API the runtime
uses (``llama_adapter_lora_init`` / ``llama_set_adapters_lora``); only the
answer tokens of each conversation are scored, as in training. An aLoRA adapter
is applied as at run time: the text up to its last invocation is read by the
base alone, the rest with the adapter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import BuildError
from ..runtime.alora import invocation_start
from .scoring import LlamaScorer, log_softmax


@dataclass(frozen=True)
class ScoredText:
    """A conversation rendered by the chat template: the prompt part is context, the rest is scored."""

    prompt: str
    full: str


@dataclass(frozen=True)
class NLL:
    nll: float        # mean negative log-likelihood per scored token, nats
    tokens: int       # scored tokens

    @property
    def perplexity(self) -> float:
        return math.exp(self.nll)


class HeldoutScorer(LlamaScorer):
    """Scores the answer part of conversations, alone or with an adapter (see :class:`LlamaScorer`)."""

    def score(self, text: ScoredText) -> tuple[float, int]:
        """(sum of NLL over the answer tokens, number of answer tokens)."""
        prompt_ids = self.tokenize(text.prompt)
        ids = self.tokenize(text.full)[: self.n_ctx]
        # The answer starts where the full text stops agreeing with the prompt's tokens.
        start = next((i for i, (a, b) in enumerate(zip(prompt_ids, ids)) if a != b), min(len(prompt_ids), len(ids)))
        start = max(start, 1)
        if start >= len(ids):
            return 0.0, 0
        self.clear()
        # An aLoRA is off before its last invocation (everywhere, if there is none): the base reads that part.
        split = 0
        if self._invocation:
            found = invocation_start(ids, self._invocation)
            split = len(ids) if found is None else found
        logits: dict[int, np.ndarray] = {}
        for lo, hi, on in ((0, split, False), (split, len(ids), True)):
            if hi > lo:
                self.apply(on)
                logits.update(self.decode(ids, lo, hi, start - 1))
        total = 0.0
        for i in range(start - 1, len(ids) - 1):
            total -= float(log_softmax(logits[i])[ids[i + 1]])
        return total, len(ids) - start

    def mean_nll(self, texts: Sequence[ScoredText], adapter: Path | None = None, scale: float = 1.0) -> NLL:
        self.use_adapter(adapter, scale)
        total, count = 0.0, 0
        for t in texts:
            s, n = self.score(t)
            total += s
            count += n
        if count == 0:
            raise BuildError("no answer tokens to score", hint="add held-out rows (raise val_fraction)")
        return NLL(nll=total / count, tokens=count)
