"""Scoring text with llama.cpp: one model and context, adapters as the runtime applies them, the logits of every
position, and the log-probabilities computed from them.

Held-out NLL (:mod:`.heldout`) and the quality figures of a quantized file
(:mod:`.evaluate`) both score through :class:`LlamaScorer`, so both see what the
runtime would see, quantization kernels included. The model loads with the
parameters :mod:`edge_assistant.runtime.llama_load` chooses.
"""

from __future__ import annotations

import ctypes
from contextlib import ExitStack
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import BuildError
from ..runtime.logits import output_logits


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log p per row, computed in the input's precision (pass float64 for sums over many tokens)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class LlamaScorer:
    """One llama.cpp model and context for scoring, with adapters; ``close()`` frees them (idempotent)."""

    def __init__(self, gguf: Path, *, n_ctx: int = 1024, n_threads: int = 1) -> None:
        import llama_cpp as lc

        self._lc = lc
        from ..runtime.llama_load import model_params
        from .quantize import _LogCapture

        self._stack = ExitStack()
        # llama.cpp logs every context and adapter change; keep the build log readable.
        self.log = self._stack.enter_context(_LogCapture(lc))
        self._adapters: dict[Path, object] = {}
        self._active: tuple[object, float, Path] | None = None  # (handle, scale, path) of use_adapter
        self._invocation: list[int] = []                        # the active aLoRA's invocation sequence
        self.n_ctx = n_ctx
        lc.llama_backend_init()
        mparams = model_params()   # weight repacking as at run time (off where AMX would crash)
        self.model = lc.llama_model_load_from_file(str(gguf).encode(), mparams)
        if not self.model:
            self.close()
            raise BuildError(f"llama.cpp could not load {gguf}", hint="check the file with `edge-assistant bundle verify`")
        self._stack.callback(lc.llama_model_free, self.model)
        cparams = lc.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = n_ctx
        cparams.n_ubatch = n_ctx
        cparams.n_threads = n_threads
        cparams.n_threads_batch = n_threads
        self.ctx = lc.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            raise BuildError(f"llama.cpp could not create a context for {gguf}", hint="lower eval.n_ctx")
        self._stack.callback(lc.llama_free, self.ctx)
        self.vocab = lc.llama_model_get_vocab(self.model)
        self.n_vocab = lc.llama_vocab_n_tokens(self.vocab)
        self._batch = lc.llama_batch_init(n_ctx, 0, 1)
        self._stack.callback(lc.llama_batch_free, self._batch)

    def close(self) -> None:
        self._stack.close()  # adapters are freed with the model

    def __enter__(self) -> "LlamaScorer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def tokenize(self, text: str, *, add_bos: bool = False, special: bool = True) -> list[int]:
        """Token ids of ``text``; ``add_bos`` adds the model's BOS where its tokenizer has one,
        ``special`` reads special-token texts (``<|im_end|>``) as those tokens."""
        lc = self._lc
        data = text.encode("utf-8")
        cap = len(data) + 16
        buf = (lc.llama_token * cap)()
        n = lc.llama_tokenize(self.vocab, data, len(data), buf, cap, add_bos, special)
        if n < 0:
            raise BuildError("llama.cpp tokenization overflowed", hint="report this as a bug")
        return list(buf[:n])

    def use_adapter(self, adapter: Path | None, scale: float = 1.0) -> None:
        """Score with ``adapter`` from now on (None: the base alone). An aLoRA adapter (one whose GGUF
        carries an invocation sequence) is applied only from the last invocation of each text on."""
        lc = self._lc
        if adapter is None:
            self._active, self._invocation = None, []
            return
        if adapter not in self._adapters:
            handle = lc.llama_adapter_lora_init(self.model, str(adapter).encode())
            if not handle:
                raise BuildError(f"llama.cpp refused the adapter {adapter}",
                                 hint="was it converted against this base? rerun the modifiers stage")
            self._adapters[adapter] = handle
        handle = self._adapters[adapter]
        n = lc.llama_adapter_get_alora_n_invocation_tokens(handle)
        tokens = lc.llama_adapter_get_alora_invocation_tokens(handle) if n else None
        self._active = (handle, float(scale), adapter)
        self._invocation = [int(tokens[i]) for i in range(n)] if n else []

    def apply(self, on: bool) -> None:
        lc = self._lc
        if not on or self._active is None:
            lc.llama_set_adapters_lora(self.ctx, None, 0, None)
            return
        handle, scale, adapter = self._active
        arr = (lc.llama_adapter_lora_p_ctypes * 1)(handle)
        scales = (ctypes.c_float * 1)(scale)
        if lc.llama_set_adapters_lora(self.ctx, arr, 1, scales) != 0:
            raise BuildError(f"llama.cpp could not apply the adapter {adapter}", hint="rerun the modifiers stage")

    def _submit(self, ids: Sequence[int], lo: int, hi: int, first_scored: int) -> None:
        """Decode ids[lo:hi] after the first ``lo`` (already in the KV cache), with logits for positions >= first_scored."""
        lc = self._lc
        batch = self._batch
        batch.n_tokens = hi - lo
        for j, i in enumerate(range(lo, hi)):
            batch.token[j] = ids[i]
            batch.pos[j] = i
            batch.n_seq_id[j] = 1
            batch.seq_id[j][0] = 0
            batch.logits[j] = 1 if i >= first_scored else 0
        if lc.llama_decode(self.ctx, batch) != 0:
            raise BuildError("llama.cpp decode failed while scoring", hint="lower eval.n_ctx")

    def decode(self, ids: Sequence[int], lo: int, hi: int, first_scored: int) -> dict[int, np.ndarray]:
        """Decode ids[lo:hi] (see ``_submit``); the float64 logits of positions >= first_scored."""
        self._submit(ids, lo, hi, first_scored)
        return {i: output_logits(self.ctx, j, self.n_vocab).astype(np.float64)
                for j, i in enumerate(range(lo, hi)) if i >= first_scored}

    def clear(self) -> None:
        """Forget the KV cache: the next decode starts a new text at position 0."""
        self._lc.llama_memory_clear(self._lc.llama_get_memory(self.ctx), True)

    def window_logits(self, ids: Sequence[int]) -> np.ndarray:
        """[len(ids), n_vocab] logits of a fresh read of ``ids`` (at most n_ctx) with the adapter set now."""
        self.clear()
        self.apply(True)
        self._submit(ids, 0, len(ids), 0)
        return np.stack([output_logits(self.ctx, j, self.n_vocab) for j in range(len(ids))])
