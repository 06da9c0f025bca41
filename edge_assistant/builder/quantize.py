"""Quantize a GGUF with llama.cpp's own quantizer and report what really came out.

llama.cpp picks a type per tensor from the requested mix, and silently falls back
to another type when a row does not split into whole blocks (SmolLM2's 576-wide
rows cannot take the 256-wide k-quant blocks). The report reads the output file's
actual tensor types and pairs them with llama.cpp's own fallback notices, so the
user sees which tensors did not get the type asked for.
"""

from __future__ import annotations

import ctypes
import re
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..bundle.ggufmeta import read_gguf_info
from ..durable import atomic_file
from ..errors import ConversionError
from . import quant_mix
from .gguf_index import TensorEntry, read_tensor_index

# --type name -> llama.cpp's enum llama_ftype (quant_mix owns the table): the mixes llama.cpp
# quantizes without an importance matrix (the others need `importance`).
FTYPES: dict[str, int] = {name: ftype for name, ftype in quant_mix.FTYPES.items() if not quant_mix.needs_importance(name)}

# llama.cpp's notice when a tensor's row length does not fit the wanted type's block.
_FALLBACK = re.compile(r"warning: (\S+)\s+- ncols\s+\d+ not divisible by\s+\d+ \(required for type\s+(\S+)\)")


@dataclass(frozen=True)
class Fallback:
    tensor: str
    wanted: str
    got: str


@dataclass
class QuantizeReport:
    path: Path
    qtype: str
    bits_per_weight: float
    size: int
    fallbacks: list[Fallback] = field(default_factory=list)
    tensor_types: dict[str, int] = field(default_factory=dict)  # type name -> number of tensors

    def summary(self) -> str:
        types = ", ".join(f"{n}×{t}" for t, n in sorted(self.tensor_types.items(), key=lambda kv: -kv[1]))
        return (f"{self.path}: {self.qtype}, {self.size / 1e6:.1f} MB, {self.bits_per_weight:.2f} bits/weight "
                f"({types}); {len(self.fallbacks)} tensor(s) fell back")


class _LogCapture:
    """Collect llama.cpp's log text while quantizing, then give logging back to llama-cpp-python."""

    def __init__(self, llama_cpp: object) -> None:
        self._llama_cpp = llama_cpp
        self._lock = threading.Lock()
        self.parts: list[str] = []

        @llama_cpp.llama_log_callback  # type: ignore[attr-defined,misc]
        def _callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            with self._lock:
                self.parts.append(text.decode("utf-8", errors="replace"))

        self._callback = _callback  # keep a reference: llama.cpp holds only the raw pointer

    def __enter__(self) -> _LogCapture:
        self._llama_cpp.llama_log_set(self._callback, ctypes.c_void_p(0))  # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc: object) -> None:
        from llama_cpp import _logger  # llama-cpp-python's own handler, installed at import

        self._llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))  # type: ignore[attr-defined]

    @property
    def text(self) -> str:
        return "".join(self.parts)


def _check_source(src: Path) -> None:
    info = read_gguf_info(src)  # raises a clear error when it is not GGUF at all
    if info.is_adapter:
        raise ConversionError(f"{src} is a LoRA adapter, not a model", hint="quantize the base model GGUF")


def _imatrix_array(llama_cpp: Any, importance: Mapping[str, np.ndarray]) -> tuple[Any, list[Any]]:
    """`llama_model_quantize_params.imatrix`: a NULL-terminated C array of (name, values, count).

    Returns the array and the buffers it points into, which must outlive the call.
    """
    entry = llama_cpp.llama_model_imatrix_data
    rows = (entry * (len(importance) + 1))()
    keep: list[Any] = [rows]
    for i, (name, vec) in enumerate(sorted(importance.items())):
        values = np.ascontiguousarray(vec, dtype=np.float32)
        keep.append(values)
        rows[i] = entry(name.encode(), values.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), values.size)
    rows[len(importance)] = entry(None, None, 0)
    return ctypes.cast(rows, ctypes.POINTER(entry)), keep


def quantize_gguf(src: Path, out: Path, qtype: str, *, threads: int = 0,
                  importance: Mapping[str, np.ndarray] | None = None) -> QuantizeReport:
    """Quantize ``src`` to ``qtype`` at ``out`` through ``llama_model_quantize``; report fallbacks.

    ``importance`` (tensor name -> per-input-channel vector, as llama-imatrix writes them)
    goes to llama.cpp as its importance matrix: what `llama-quantize --imatrix` does.
    """
    import llama_cpp

    src, out = Path(src), Path(out)
    key = qtype.upper()
    if key not in (quant_mix.FTYPES if importance else FTYPES):
        needs = " without an importance matrix" if key in quant_mix.FTYPES else ""
        raise ConversionError(f"unknown quantization type {qtype!r}{needs}", hint=f"choose one of {', '.join(FTYPES)}")
    _check_source(src)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = quant_mix.FTYPES[key]
    params.nthread = threads
    buffers: list[Any] = []
    if importance:
        params.imatrix, buffers = _imatrix_array(llama_cpp, importance)
    with atomic_file(out) as temp, _LogCapture(llama_cpp) as log:
        status = llama_cpp.llama_model_quantize(str(src).encode(), str(temp).encode(), ctypes.byref(params))
        if status != 0:
            last = [line for line in log.text.splitlines() if line.strip()][-1:] or ["no message"]
            raise ConversionError(f"llama.cpp could not quantize {src} to {key}: {last[0].strip()}",
                                  hint="check that the input is a complete f32/f16/bf16 model GGUF")
    del buffers  # llama.cpp read the importance during the call
    return _report(out, key, log.text)


def _silent_output_fallback(tensors: list[TensorEntry], qtype: str) -> Fallback | None:
    """The output matrix's shape-driven substitution, which llama.cpp makes without a notice.

    k-quant mixes give the output matrix (token_embd when embeddings are tied) Q6_K;
    when its rows do not split into 256-wide blocks llama.cpp picks Q8_0 directly
    instead of going through the logged fallback path.
    """
    if "_K" not in qtype:
        return None
    by_name = {t.name: t for t in tensors}
    output = by_name.get("output.weight") or by_name.get("token_embd.weight")
    if output is None or output.shape[0] % 256 == 0 or output.qtype.name != "Q8_0":
        return None
    return Fallback(output.name, "Q6_K", "Q8_0")


def _report(out: Path, qtype: str, log: str) -> QuantizeReport:
    tensors = read_tensor_index(out)
    got = {t.name: t.qtype.name for t in tensors}
    n_bytes = sum(t.nbytes for t in tensors)
    n_weights = sum(t.n_elements for t in tensors)
    fallbacks = [Fallback(name, wanted.upper(), got.get(name, "missing"))
                 for name, wanted in _FALLBACK.findall(log)]
    silent = _silent_output_fallback(tensors, qtype)
    if silent is not None and silent.tensor not in {f.tensor for f in fallbacks}:
        fallbacks.append(silent)
    return QuantizeReport(path=out, qtype=qtype, bits_per_weight=8.0 * n_bytes / n_weights,
                          size=out.stat().st_size, fallbacks=fallbacks, tensor_types=dict(Counter(got.values())))
