"""float16 storage of tensors (model weights, adapters): a value beyond its range is refused, never
written as inf. The callers name the tensor and the next step."""

from __future__ import annotations

import numpy as np

FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65504
# The smallest magnitude that float16 rounds to inf: halfway from 65504 to 65536, and the tie goes
# to 65536 (even mantissa). Below it every value rounds to a finite float16.
_ROUNDS_TO_INF = 65520.0

__all__ = ["FLOAT16_MAX", "to_float16"]


def to_float16(data: np.ndarray) -> np.ndarray | None:
    """``data`` as contiguous float16, or None when a value is not finite or beyond float16's range.

    The range is read from the source's min and max (a NaN makes both comparisons false), which
    costs a fifth of testing every float16 for finiteness after the cast.
    """
    if data.size and not (-_ROUNDS_TO_INF < data.min() and data.max() < _ROUNDS_TO_INF):
        return None
    return np.ascontiguousarray(data, dtype=np.float16)
