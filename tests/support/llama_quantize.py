"""llama.cpp's own quantizer, `llama_model_quantize`, as the reference our quantizer must equal byte for byte.

Importance goes in through llama_model_quantize_params.imatrix, the C struct array that
Python can fill with ctypes (the project's code never calls this: it is a test reference).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np


def llama_quantize(src: Path, out: Path, mix: str, importance: dict[str, np.ndarray] | None = None) -> None:
    """llama.cpp's own quantizer, with importance passed through llama_model_quantize_params.imatrix."""
    import llama_cpp

    from edge_assistant.builder.quant_mix import FTYPES

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPES[mix]
    params.nthread = 1
    keep = []
    if importance:
        ImatrixData = llama_cpp.llama_model_imatrix_data  # noqa: N806
        rows = (ImatrixData * (len(importance) + 1))()
        for i, (name, vec) in enumerate(sorted(importance.items())):
            arr = np.ascontiguousarray(vec, dtype=np.float32)
            keep.append(arr)
            rows[i] = ImatrixData(name.encode(), arr.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), arr.size)
        rows[len(importance)] = ImatrixData(None, None, 0)
        keep.append(rows)
        params.imatrix = ctypes.cast(rows, ctypes.POINTER(ImatrixData))
    status = llama_cpp.llama_model_quantize(str(src).encode(), str(out).encode(), ctypes.byref(params))
    assert status == 0, f"llama.cpp could not quantize to {mix}"
