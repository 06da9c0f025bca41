"""float16 storage of tensors (model weights, adapters): a value beyond its range is refused, never
written as inf. The callers name the tensor and the next step."""

from __future__ import annotations

import numpy as np

FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65504

__all__ = ["FLOAT16_MAX", "to_float16"]


def to_float16(data: np.ndarray) -> np.ndarray | None:
    """``data`` as contiguous float16, or None when a value is not finite or beyond float16's range."""
    with np.errstate(over="ignore", invalid="ignore"):
        half = np.ascontiguousarray(data, dtype=np.float16)
    return half if np.isfinite(half).all() else None
