"""Reading llama.cpp's logits: the one copy of a context's output row into numpy."""

from __future__ import annotations

import ctypes
from typing import Any

import llama_cpp
import numpy as np


def output_logits(ctx: Any, i: int, n_vocab: int) -> np.ndarray:
    """A float32 copy of the logits llama.cpp computed for output ``i`` of the last decode (-1: the last)."""
    ptr = llama_cpp.llama_get_logits_ith(ctx, i)
    if not ptr:
        raise ValueError(f"llama.cpp has no logits for output {i}")
    return np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(n_vocab,)).copy()
