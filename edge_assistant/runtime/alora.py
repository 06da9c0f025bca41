"""Where an activated LoRA (aLoRA) turns on in a token sequence.

An aLoRA adapter carries an invocation sequence (``adapter.alora.invocation_tokens``
in its GGUF; the tokens that open an assistant turn, for our modifiers). It applies
from the first token of the *last* occurrence of that sequence on; every token
before it is computed by the base alone. peft (``calculate_alora_offsets``) and
llama.cpp's server pick the same position; tests/builder/test_convert_alora.py
checks this against peft.
"""

from __future__ import annotations

from typing import Sequence


def invocation_start(tokens: Sequence[int], invocation: Sequence[int]) -> int | None:
    """Index of the first token of the last occurrence of ``invocation`` in ``tokens``; None if absent."""
    n = len(invocation)
    if n == 0:
        return None
    first = invocation[0]
    wanted = list(invocation)
    for start in range(len(tokens) - n, -1, -1):
        if tokens[start] == first and list(tokens[start:start + n]) == wanted:
            return start
    return None
