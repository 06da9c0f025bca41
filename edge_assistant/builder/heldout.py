"""Held-out NLL of a base GGUF, alone and with each GGUF adapter, measured through llama.cpp.

This scores the files that ship (the quantized base and the converted
adapters), not the PyTorch models they came from, so the number in REPORT.md
is what a user gets. Adapters are applied with the low-level API the runtime
uses (``llama_adapter_lora_init`` / ``llama_set_adapters_lora``); only the
answer tokens of each conversation are scored, as in training. An aLoRA adapter
is applied as at run time: the text up to its last invocation is read by the
base alone, the rest with the adapter.
"""

from __future__ import annotations

import ctypes
import math
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import BuildError
from ..runtime.alora import invocation_start


@dataclass(frozen=True)
class ScoredText:
    """A conversation rendered by the chat template: the prompt part is context, the rest is scored."""

    prompt: str
    full: str


@dataclass(frozen=True)
class NLL:
    nll: float        # mean negative log-likelihood per scored token, nats
    tokens: int       # scored tokens

    @property
    def perplexity(self) -> float:
        return math.exp(self.nll)


class LlamaScorer:
    """One llama.cpp model and context; ``close()`` frees them (idempotent)."""

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

    def tokenize(self, text: str) -> list[int]:
        lc = self._lc
        data = text.encode("utf-8")
        cap = len(data) + 16
        buf = (lc.llama_token * cap)()
        n = lc.llama_tokenize(self.vocab, data, len(data), buf, cap, False, True)
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

    def _apply(self, on: bool) -> None:
        lc = self._lc
        if not on or self._active is None:
            lc.llama_set_adapters_lora(self.ctx, None, 0, None)
            return
        handle, scale, adapter = self._active
        arr = (lc.llama_adapter_lora_p_ctypes * 1)(handle)
        scales = (ctypes.c_float * 1)(scale)
        if lc.llama_set_adapters_lora(self.ctx, arr, 1, scales) != 0:
            raise BuildError(f"llama.cpp could not apply the adapter {adapter}", hint="rerun the modifiers stage")

    def _decode(self, ids: Sequence[int], lo: int, hi: int, first_scored: int) -> dict[int, np.ndarray]:
        """Decode ids[lo:hi] after the first ``lo`` (already in the KV cache); the logits of positions >= first_scored."""
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
        return {i: np.ctypeslib.as_array(lc.llama_get_logits_ith(self.ctx, j), shape=(self.n_vocab,)).astype(np.float64)
                for j, i in enumerate(range(lo, hi)) if i >= first_scored}

    def score(self, text: ScoredText) -> tuple[float, int]:
        """(sum of NLL over the answer tokens, number of answer tokens)."""
        lc = self._lc
        prompt_ids = self.tokenize(text.prompt)
        ids = self.tokenize(text.full)[: self.n_ctx]
        # The answer starts where the full text stops agreeing with the prompt's tokens.
        start = next((i for i, (a, b) in enumerate(zip(prompt_ids, ids)) if a != b), min(len(prompt_ids), len(ids)))
        start = max(start, 1)
        if start >= len(ids):
            return 0.0, 0
        lc.llama_memory_clear(lc.llama_get_memory(self.ctx), True)
        # An aLoRA is off before its last invocation (everywhere, if there is none): the base reads that part.
        split = 0
        if self._invocation:
            found = invocation_start(ids, self._invocation)
            split = len(ids) if found is None else found
        logits: dict[int, np.ndarray] = {}
        for lo, hi, on in ((0, split, False), (split, len(ids), True)):
            if hi > lo:
                self._apply(on)
                logits.update(self._decode(ids, lo, hi, start - 1))
        total = 0.0
        for i in range(start - 1, len(ids) - 1):
            row = logits[i]
            peak = row.max()
            total += float(peak + np.log(np.exp(row - peak).sum()) - row[ids[i + 1]])
        return total, len(ids) - start

    def mean_nll(self, texts: Sequence[ScoredText], adapter: Path | None = None, scale: float = 1.0) -> NLL:
        self.use_adapter(adapter, scale)
        total, count = 0.0, 0
        for t in texts:
            s, n = self.score(t)
            total += s
            count += n
        if count == 0:
            raise BuildError("no answer tokens to score", hint="add held-out rows (raise val_fraction)")
        return NLL(nll=total / count, tokens=count)
