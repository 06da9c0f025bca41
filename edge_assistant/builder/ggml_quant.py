"""ggml's own quantization kernels, called through ctypes from the libggml llama-cpp-python ships.

`quantize_rows(qtype, rows, importance)` is `ggml_quantize_chunk`: exactly the
rounding `llama_model_quantize` produces, for every type ggml can quantize, with an
optional per-column importance vector (what llama.cpp calls the imatrix). No extra
dependency: the library is the one the runtime already loads.
"""

from __future__ import annotations

import ctypes
import math
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConversionError

# enum ggml_type (ggml.h). The names are gguf's GGMLQuantizationType names too.
GGML_TYPES: dict[str, int] = {
    "F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8,
    "Q2_K": 10, "Q3_K": 11, "Q4_K": 12, "Q5_K": 13, "Q6_K": 14,
    "IQ2_XXS": 16, "IQ2_XS": 17, "IQ3_XXS": 18, "IQ1_S": 19, "IQ4_NL": 20, "IQ3_S": 21, "IQ2_S": 22,
    "IQ4_XS": 23, "IQ1_M": 29, "BF16": 30, "TQ1_0": 34, "TQ2_0": 35, "MXFP4": 39,
}
TYPE_NAMES: dict[int, str] = {v: k for k, v in GGML_TYPES.items()}

# Types ggml quantizes to from float rows (F32/F16/BF16 are plain conversions).
QUANT_TYPES = tuple(t for t in GGML_TYPES if t not in ("F32", "F16", "BF16"))


def _library_dir() -> Path:
    import llama_cpp

    return Path(llama_cpp.__file__).resolve().parent / "lib"


@cache
def _lib() -> Any:
    """libggml-base (where the quantizers live), loaded once; the runtime's own copy."""
    folder = _library_dir()
    candidates = [p for stem in ("libggml-base", "libggml", "ggml-base", "ggml")
                  for p in sorted(folder.glob(f"{stem}.*")) if p.suffix in (".so", ".dylib", ".dll")]
    for path in candidates:
        try:
            lib = ctypes.CDLL(str(path))
            lib.ggml_quantize_chunk  # noqa: B018 -- raises AttributeError when absent
        except (OSError, AttributeError):
            continue
        lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                            ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
        lib.ggml_quantize_chunk.restype = ctypes.c_size_t
        lib.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
        lib.ggml_row_size.restype = ctypes.c_size_t
        lib.ggml_blck_size.argtypes = [ctypes.c_int]
        lib.ggml_blck_size.restype = ctypes.c_int64
        lib.ggml_quantize_requires_imatrix.argtypes = [ctypes.c_int]
        lib.ggml_quantize_requires_imatrix.restype = ctypes.c_bool
        lib.ggml_quantize_init.argtypes = [ctypes.c_int]
        lib.ggml_quantize_init.restype = None
        lib.ggml_validate_row_data.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
        lib.ggml_validate_row_data.restype = ctypes.c_bool
        return lib
    raise ConversionError(f"no libggml with ggml_quantize_chunk under {folder}",
                          hint="reinstall llama-cpp-python (pip install --force-reinstall llama-cpp-python)")


def type_id(qtype: str) -> int:
    key = qtype.upper()
    if key not in GGML_TYPES:
        raise ConversionError(f"unknown tensor type {qtype!r}", hint=f"choose one of {', '.join(GGML_TYPES)}")
    return GGML_TYPES[key]


def block_size(qtype: str) -> int:
    return int(_lib().ggml_blck_size(type_id(qtype)))


def row_size(qtype: str, n_per_row: int) -> int:
    """Bytes of one quantized row of `n_per_row` values (ggml_row_size)."""
    return int(_lib().ggml_row_size(type_id(qtype), n_per_row))


def tensor_bytes(qtype: str, shape: tuple[int, ...]) -> int:
    """Bytes of a tensor of numpy `shape` (rows first, the row length last) quantized to `qtype`."""
    return math.prod(shape[:-1]) * row_size(qtype, shape[-1])


def requires_importance(qtype: str) -> bool:
    """True for the types ggml refuses to quantize without importance (IQ2_*, IQ3_XXS, IQ1_*)."""
    return bool(_lib().ggml_quantize_requires_imatrix(type_id(qtype)))


def fits(qtype: str, n_per_row: int) -> bool:
    """Whether rows of `n_per_row` split into whole blocks of `qtype`."""
    return n_per_row % block_size(qtype) == 0


def quantize_rows(qtype: str, rows: np.ndarray, importance: np.ndarray | None = None, *,
                  threads: int = 1) -> np.ndarray:
    """Quantize a [n_rows, n_per_row] float array to `qtype`; the raw bytes, as uint8 [n_rows, row_size].

    `importance` is one non-negative weight per column (n_per_row values), or None.
    Types that require importance raise a clear error without it. With `threads` > 1
    the rows are split into that many runs quantized at once (ctypes releases the GIL
    around ggml); every row is quantized on its own, so the bytes are the same.
    """
    tid = type_id(qtype)
    lib = _lib()
    src = np.ascontiguousarray(rows, dtype=np.float32)
    if src.ndim != 2:
        raise ConversionError(f"quantize_rows takes a 2-D array, got shape {src.shape}", hint="reshape to rows")
    n_rows, n_per_row = src.shape
    if n_per_row % block_size(qtype):
        raise ConversionError(f"rows of {n_per_row} values do not split into {qtype} blocks of {block_size(qtype)}",
                              hint="choose a type whose block size divides the row length (e.g. Q8_0, Q5_0, Q4_0)")
    weights = None
    if importance is not None:
        weights = np.ascontiguousarray(importance, dtype=np.float32).reshape(-1)
        if weights.shape[0] != n_per_row:
            raise ConversionError(f"importance has {weights.shape[0]} values for rows of {n_per_row}",
                                  hint="collect importance for this tensor's input width")
        if not np.all(np.isfinite(weights)):
            raise ConversionError("importance holds non-finite values", hint="recollect the importance statistics")
    elif lib.ggml_quantize_requires_imatrix(tid):
        raise ConversionError(f"{qtype} needs importance statistics", hint="pass calibration text (--calib)")
    size = int(lib.ggml_row_size(tid, n_per_row))
    out = np.empty((n_rows, size), dtype=np.uint8)
    imatrix = None if weights is None else weights.ctypes.data
    bounds = np.linspace(0, n_rows, min(max(1, threads), n_rows) + 1, dtype=np.int64)
    runs = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]

    def run(span: tuple[int, int]) -> int:
        a, b = span
        return int(lib.ggml_quantize_chunk(tid, src[a:b].ctypes.data, out[a:b].ctypes.data, 0, b - a,
                                           n_per_row, imatrix))

    if len(runs) > 1:
        lib.ggml_quantize_init(tid)  # its lookup tables, built once before the threads share them
        with ThreadPoolExecutor(len(runs)) as pool:
            written = sum(pool.map(run, runs))
    else:
        written = sum(map(run, runs))
    if written != out.nbytes or not lib.ggml_validate_row_data(tid, out.ctypes.data, out.nbytes):
        raise ConversionError(f"ggml produced invalid {qtype} data ({written} of {out.nbytes} bytes)",
                              hint="check the source tensor for NaN or infinite values")
    return out


def dequantize(qtype: str, data: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Float32 values of quantized bytes, through gguf-py's reference dequantizers."""
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize as gguf_dequantize

    return gguf_dequantize(np.asarray(data, dtype=np.uint8), GGMLQuantizationType[qtype.upper()]).reshape(shape)
