"""Reference logits straight from llama-cpp-python, independent of the engine's state keeping.

A prompt is read in pieces, each under its own adapter (None: the base alone), into a fresh
context: the logits after the last piece are what the engine must produce for a turn whose
prompt it read the same way. Pieces matter: with an adapter applied, llama.cpp's results
depend slightly on how a prompt is cut into batches.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Sequence

import numpy as np

import llama_cpp
from edge_assistant.runtime.llama_load import load_llama


def reference_logits(base_gguf: Path, pieces: Sequence[tuple[Sequence[int], Path | None]], *,
                     n_ctx: int = 4096, scale: float = 1.0) -> np.ndarray:
    """Logits for the token after all ``pieces`` (token lists, each with its adapter or None)."""
    llm = load_llama(str(base_gguf), n_ctx=n_ctx, n_threads=1, n_threads_batch=1,
                          logits_all=False, verbose=False)
    try:
        handles: dict[Path, object] = {}
        for tokens, adapter in pieces:
            if adapter is None:
                assert llama_cpp.llama_set_adapters_lora(llm.ctx, None, 0, None) == 0
            else:
                if adapter not in handles:
                    handles[adapter] = llama_cpp.llama_adapter_lora_init(llm.model, str(adapter).encode())
                    assert handles[adapter], f"llama.cpp could not load {adapter}"
                arr = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(handles[adapter])  # type: ignore[arg-type]
                assert llama_cpp.llama_set_adapters_lora(llm.ctx, arr, 1, (ctypes.c_float * 1)(scale)) == 0
            llm.eval(list(tokens))
        n_vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(llm.model))
        ptr = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        return np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(n_vocab,)).copy()
    finally:
        llm.close()
