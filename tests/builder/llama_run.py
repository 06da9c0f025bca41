"""Run a GGUF in real llama.cpp (llama-cpp-python) and a HF folder in transformers, for comparisons."""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def open_llama(path: Path, *, n_ctx: int = 512, logits_all: bool = True, vocab_only: bool = False):
    from edge_assistant.runtime.llama_load import load_llama

    return load_llama(path, n_ctx=n_ctx, n_batch=n_ctx, n_threads=1, n_threads_batch=1,
                      logits_all=logits_all, vocab_only=vocab_only, verbose=False)


def llama_logits(path: Path, ids: Sequence[int], *, adapter: Path | None = None, scale: float = 1.0) -> np.ndarray:
    """Logits at every position of ``ids`` from llama.cpp, optionally with a LoRA adapter applied."""
    import llama_cpp

    llm = open_llama(path, n_ctx=max(64, len(ids)))
    if adapter is not None:
        # The low-level hot-swap API the runtime uses (Llama(lora_path=...) would disable mmap).
        handle = llama_cpp.llama_adapter_lora_init(llm._model.model, str(adapter).encode())
        assert handle, f"llama.cpp refused the adapter {adapter}"
        adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(handle)
        scales = (ctypes.c_float * 1)(scale)
        assert llama_cpp.llama_set_adapters_lora(llm._ctx.ctx, adapters, 1, scales) == 0
    try:
        llm.eval(list(ids))
        return np.array(llm.scores[: len(ids)], dtype=np.float32)
    finally:
        llm.close()  # llama.cpp frees a model's adapters together with the model


def hf_logits(model, ids: Sequence[int]) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.tensor([list(ids)])).logits[0].float().numpy()


def assert_same_logits(got: np.ndarray, want: np.ndarray, *, rel: float = 1e-3) -> None:
    """Same top-1 at every position and max |diff| <= rel x the reference logits' range."""
    assert got.shape == want.shape
    mismatched = np.nonzero(got.argmax(-1) != want.argmax(-1))[0]
    assert mismatched.size == 0, f"top-1 differs at positions {mismatched.tolist()}"
    worst = float(np.abs(got - want).max())
    spread = float(want.max() - want.min())
    assert worst <= rel * spread, f"max |diff| {worst:.5f} > {rel} x range {spread:.3f}"


@functools.lru_cache(maxsize=None)
def hf_tokenizer(folder: Path):
    """The HF tokenizer of a test model folder, parsed once per session (Llama 3's is 17 MB of JSON)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)
