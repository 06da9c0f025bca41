"""Loading a llama.cpp model: the one place that chooses its model parameters.

Why this exists: ggml's CPU backend can keep weights in "extra" buffer types
that repack them for faster kernels (``AMX`` on Intel CPUs with Advanced Matrix
Extensions, ``CPU_REPACK`` elsewhere). In the llama.cpp build that ships with
llama-cpp-python 0.3.36 the AMX kernels segfault in the first ``llama_decode``
of any quantized model (Q4_0, Q4_1, Q8_0, Q4_K...): the compiled
``ggml_tile_config_init`` hands ``ldtilecfg`` a tile configuration that is only
partly initialised, and the CPU faults (upstream: ggml-org/llama.cpp#20824).
So where the CPU backend offers the AMX buffer type, extra buffer types are
turned off and weights stay in plain CPU buffers (llama.cpp's ``--no-repack``).
The ``weight_repack`` setting overrides the choice.

Everything that loads a model (the engine, the builder's evaluation and
held-out scoring, tests, benchmarks) goes through :func:`load_llama` or
:func:`model_params`.
"""

from __future__ import annotations

import ctypes
import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llama_cpp

from ..errors import ModelError
from ..settings import WEIGHT_REPACK_MODES as MODES
# The CPU extra buffer type whose kernels crash in this llama.cpp build.
CRASHING_BUFT = "AMX"
_GGML_BACKEND_DEVICE_TYPE_CPU = 0

_process_mode = "auto"


@dataclass(frozen=True)
class RepackChoice:
    """Whether llama.cpp may use the CPU's extra (weight-repacking) buffer types, and why."""

    use_extra_bufts: bool
    mode: str
    reason: str

    def describe(self) -> str:
        return f"{'on' if self.use_extra_bufts else 'off'} ({self.mode}: {self.reason})"


def set_weight_repack(mode: str) -> None:
    """Set the process-wide ``weight_repack`` mode (from the settings, once at launch)."""
    global _process_mode
    _process_mode = _checked(mode)


def _checked(mode: str) -> str:
    if mode not in MODES:
        raise ModelError(f"weight_repack must be one of {', '.join(MODES)}, got {mode!r}",
                         hint="set weight_repack = \"auto\"")
    return mode


@functools.lru_cache(maxsize=1)
def cpu_extra_buffer_types() -> tuple[str, ...]:
    """Names of the extra buffer types ggml's CPU backend offers on this machine, e.g. ("AMX", "CPU_REPACK").

    Asked from the backend itself (the list llama.cpp uses when loading), so it
    reflects both how ggml was compiled and what the CPU and kernel allow.
    """
    lib: Any = getattr(llama_cpp.llama_cpp, "_lib", None)   # libllama: ggml's symbols resolve through it
    if lib is None:
        return _guessed()
    try:
        by_type = lib.ggml_backend_dev_by_type
        dev_reg = lib.ggml_backend_dev_backend_reg
        proc_address = lib.ggml_backend_reg_get_proc_address
        buft_name = lib.ggml_backend_buft_name
    except AttributeError:
        return _guessed(lib)
    by_type.argtypes, by_type.restype = [ctypes.c_int], ctypes.c_void_p
    dev_reg.argtypes, dev_reg.restype = [ctypes.c_void_p], ctypes.c_void_p
    proc_address.argtypes, proc_address.restype = [ctypes.c_void_p, ctypes.c_char_p], ctypes.c_void_p
    buft_name.argtypes, buft_name.restype = [ctypes.c_void_p], ctypes.c_char_p
    dev = by_type(_GGML_BACKEND_DEVICE_TYPE_CPU)
    reg = dev_reg(dev) if dev else None
    address = proc_address(reg, b"ggml_backend_dev_get_extra_bufts") if reg else None
    if not address:
        return ()
    get_extra = ctypes.CFUNCTYPE(ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p)(address)
    array = get_extra(dev)
    names: list[str] = []
    i = 0
    while array and array[i]:
        names.append((buft_name(array[i]) or b"?").decode("utf-8", "replace"))
        i += 1
    return tuple(names)


def _guessed(lib: Any = None) -> tuple[str, ...]:
    """Where the backend cannot be asked: AMX if the CPU has it and ggml was not built without it."""
    try:
        cpu_has = " amx_int8" in Path("/proc/cpuinfo").read_text()
    except OSError:
        cpu_has = False
    built = getattr(lib, "ggml_cpu_has_amx_int8", None) if lib is not None else None
    if built is not None:
        built.restype = ctypes.c_int
        cpu_has = cpu_has and bool(built())
    return (CRASHING_BUFT,) if cpu_has else ()


def choose_weight_repack(mode: str | None = None, extra_bufts: tuple[str, ...] | None = None) -> RepackChoice:
    """The decision for ``mode`` (None: the process-wide one) given the CPU backend's extra buffer types."""
    mode = _checked(_process_mode if mode is None else mode)
    if mode == "on":
        return RepackChoice(True, mode, "forced by the weight_repack setting")
    if mode == "off":
        return RepackChoice(False, mode, "forced by the weight_repack setting")
    offered = cpu_extra_buffer_types() if extra_bufts is None else extra_bufts
    if CRASHING_BUFT in offered:
        return RepackChoice(False, mode, f"this CPU offers {CRASHING_BUFT} buffers, whose llama.cpp kernels "
                                         "crash on quantized models; weights stay in plain CPU buffers")
    listed = ", ".join(offered) or "none"
    return RepackChoice(True, mode, f"extra CPU buffer types offered: {listed}")


def model_params(weight_repack: str | None = None) -> llama_cpp.llama_model_params:
    """``llama_model_default_params()`` with the weight-repack choice applied (for the low-level API)."""
    params = llama_cpp.llama_model_default_params()
    params.use_extra_bufts = choose_weight_repack(weight_repack).use_extra_bufts
    return params


class _ChosenParamsLlama(llama_cpp.Llama):
    """``llama_cpp.Llama`` whose model parameters get ``use_extra_bufts`` set before the model loads.

    ``Llama.__init__`` has no argument for it; it builds ``self.model_params``
    from the defaults and loads the model from it in the same call. This class
    intercepts that assignment (a property), so nothing in the library is patched.
    """

    def __init__(self, model_path: str, *, use_extra_bufts: bool, **kwargs: Any) -> None:
        self._use_extra_bufts = use_extra_bufts
        self._params_seen = False
        super().__init__(model_path, **kwargs)
        if not self._params_seen:   # a llama-cpp-python that no longer assigns model_params
            raise ModelError("this llama-cpp-python builds its model parameters in a way edge-assistant "
                             "does not know", hint="install the llama-cpp-python version edge-assistant requires")

    @property  # type: ignore[override]
    def model_params(self) -> llama_cpp.llama_model_params:
        return self.__dict__["_model_params"]

    @model_params.setter
    def model_params(self, params: llama_cpp.llama_model_params) -> None:
        params.use_extra_bufts = self._use_extra_bufts
        self._params_seen = True
        self.__dict__["_model_params"] = params


def load_llama(model_path: str | os.PathLike[str], *, weight_repack: str | None = None,
               **kwargs: Any) -> llama_cpp.Llama:
    """``llama_cpp.Llama(model_path, **kwargs)`` with the weight-repack choice applied.

    ``weight_repack`` is "auto", "on" or "off"; None uses the process-wide mode
    (:func:`set_weight_repack`, "auto" unless set). Errors are llama-cpp-python's
    (ValueError for a missing or unloadable file); callers turn them into their own.
    """
    choice = choose_weight_repack(weight_repack)
    return _ChosenParamsLlama(os.fspath(model_path), use_extra_bufts=choice.use_extra_bufts, **kwargs)
