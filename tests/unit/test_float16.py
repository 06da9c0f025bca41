"""builder/float16.py refuses exactly what numpy's own float16 cast would turn into inf or NaN."""

from __future__ import annotations

import numpy as np
import pytest

from edge_assistant.builder.float16 import to_float16

# Around the edge of float16's range: 65504 is its largest value, 65520 the first that rounds to inf.
EDGE = [65503.0, 65504.0, 65519.0, 65519.996, 65520.0, 65521.0, 1e6, np.nan, np.inf]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("value", EDGE + [-v for v in EDGE])
def test_refused_exactly_when_the_cast_is_not_finite(value: float, dtype: type) -> None:
    data = np.array([[0.25, -1.5], [value, 3.0]], dtype=dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        cast = data.astype(np.float16)
    half = to_float16(data)
    if np.isfinite(cast).all():
        assert half is not None and half.dtype == np.float16 and half.flags.c_contiguous
        assert np.array_equal(half, cast)
    else:
        assert half is None


def test_an_empty_tensor_is_stored() -> None:
    half = to_float16(np.zeros((0, 4), dtype=np.float32))
    assert half is not None and half.shape == (0, 4) and half.dtype == np.float16
