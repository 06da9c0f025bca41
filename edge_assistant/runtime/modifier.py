"""Modifiers: GGUF LoRA adapters hot-swapped on a loaded base.

Adapters are loaded lazily with ``llama_adapter_lora_init`` the first time they
are used and kept; switching is ``llama_set_adapters_lora`` (microseconds).
Each modifier is bound to the sha256 of the base it was trained on: one bound
to another base is refused, and the base answers instead.

A modifier is a plain LoRA (``kind = "lora"``), applied to the whole prompt, or an
activated LoRA (``kind = "alora"``), whose GGUF lists the invocation tokens
(``adapter.alora.invocation_tokens``) from which on it applies; the engine reads
everything before them under the base alone.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import llama_cpp

from ..bundle.ggufmeta import ALORA_INVOCATION_KEY, BASE_SHA256_KEY, read_gguf_info
from ..errors import BundleError, ModifierError


@dataclass(frozen=True)
class ModifierSpec:
    name: str
    path: Path
    base_sha256: str | None      # what the manifest says the adapter was trained on
    scale: float = 1.0
    description: str = ""
    sha256: str | None = None     # of the adapter GGUF (the manifest's); None: hashed on first use
    kind: str = "lora"            # "lora" or "alora" (see the module docstring)


def binding_problem(spec: ModifierSpec, base_sha256: str | None) -> str | None:
    """Why ``spec`` must not be applied to this base, or None if it may."""
    if base_sha256 is None:
        return (f"modifier '{spec.name}' cannot be checked against a base of unknown sha256; "
                "the base answers alone (use a bundle made by `edge-assistant bundle create`)")
    if spec.base_sha256 != base_sha256:
        return (f"modifier '{spec.name}' was trained on another base ({(spec.base_sha256 or 'unknown')[:12]}…, "
                f"this base is {base_sha256[:12]}…): refused, the base answers alone — rebuild the modifier "
                "on this base or use the bundle it came with")
    try:
        info = read_gguf_info(spec.path)
    except BundleError as exc:
        return f"modifier '{spec.name}' is unreadable ({exc}); the base answers alone"
    if not info.is_adapter:
        return f"modifier '{spec.name}' ({spec.path.name}) is not a GGUF adapter; the base answers alone"
    if spec.kind == "alora" and not info.array_lengths.get(ALORA_INVOCATION_KEY):
        return (f"modifier '{spec.name}' is declared an aLoRA but its GGUF has no {ALORA_INVOCATION_KEY}: "
                "refused, the base answers alone — rebuild it with `edge-assistant build`")
    recorded = info.metadata.get(BASE_SHA256_KEY)
    if recorded is not None and recorded != base_sha256:
        return (f"modifier '{spec.name}' records base {str(recorded)[:12]}… in its own metadata, not this base "
                f"({base_sha256[:12]}…): refused, the base answers alone")
    return None


class AdapterSet:
    """The adapters of one model and which one is applied to the context."""

    def __init__(self, model_ptr: object, specs: Mapping[str, ModifierSpec], base_sha256: str | None) -> None:
        self._model = model_ptr
        self.specs = dict(specs)
        self._handles: dict[str, object] = {}
        self.refused = {name: why for name, spec in self.specs.items()
                        if (why := binding_problem(spec, base_sha256)) is not None}
        self.applied: tuple[str, float] | None = None   # (name, scale) on the context now

    def handle(self, name: str) -> object:
        """Load (once) and return the adapter handle for ``name``."""
        if name in self._handles:
            return self._handles[name]
        spec = self.specs[name]
        handle = llama_cpp.llama_adapter_lora_init(self._model, str(spec.path).encode())
        if not handle:
            raise ModifierError(f"llama.cpp could not load modifier '{name}' from {spec.path}",
                                hint="the adapter does not fit this base; rebuild it or use --modifier none")
        self._handles[name] = handle
        return handle

    def invocation_tokens(self, name: str) -> tuple[int, ...] | None:
        """The aLoRA invocation tokens of ``name`` as llama.cpp read them; None for a plain LoRA."""
        handle = self.handle(name)
        n = llama_cpp.llama_adapter_get_alora_n_invocation_tokens(handle)
        if not n:
            return None
        ptr = llama_cpp.llama_adapter_get_alora_invocation_tokens(handle)
        return tuple(int(ptr[i]) for i in range(n))

    def apply(self, ctx: object, name: str | None) -> bool:
        """Put ``name`` (None: no adapter) on ``ctx``; True if anything changed."""
        wanted = None if name is None else (name, self.specs[name].scale)
        if wanted == self.applied:
            return False
        if wanted is None:
            rc = llama_cpp.llama_set_adapters_lora(ctx, None, 0, None)
        else:
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(self.handle(name))  # type: ignore[arg-type]
            scales = (ctypes.c_float * 1)(wanted[1])
            rc = llama_cpp.llama_set_adapters_lora(ctx, adapters, 1, scales)
        if rc != 0:
            self.applied = None
            raise ModifierError(f"llama.cpp refused to apply modifier '{name}' (code {rc})",
                                hint="use --modifier none, or rebuild the adapter for this base")
        self.applied = wanted
        return True

    def close(self) -> None:
        # Adapters are owned by the model in current llama.cpp and freed with it;
        # dropping our references is all that is needed before the model goes.
        self._handles.clear()
        self.applied = None
