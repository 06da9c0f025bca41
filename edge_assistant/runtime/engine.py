"""The llama.cpp engine: one base model loaded once, modifiers swapped per message.

The model and context are owned here and freed in ``close()`` (idempotent).
Prompt caching is llama-cpp-python's prefix reuse of the KV cache; it is only
valid for the adapters it was computed with, so every change of adapter or
scale clears it.
"""

from __future__ import annotations

import codecs
import ctypes
import random
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

import llama_cpp

from ..bundle.ggufmeta import read_gguf_info
from ..errors import ModelError, ModifierError
from .llama_load import load_llama
from .generation import Generation, GenerationResult, Message, SamplingParams
from .modifier import AdapterSet, ModifierSpec
from .prompt import MIN_REPLY_TOKENS, PromptFitter, Tokenizer, control_token_pattern
from .template import CHATML, ChatTemplate
from .threads import choose_threads

# How long close() waits for a generation in progress to stop before giving up on freeing.
CLOSE_WAIT_S = 120.0


class LlamaEngine:
    """Implements ``EngineProtocol`` on llama-cpp-python."""

    def __init__(self, base_path: str | Path, *, base_sha256: str | None = None,
                 modifiers: Mapping[str, ModifierSpec] | None = None, context_length: int = 4096,
                 threads: int = 0, batch_threads: int = 0, gpu_layers: int = 0, name: str = "") -> None:
        self.base_path = Path(base_path)
        self.name = name or self.base_path.stem
        info = read_gguf_info(self.base_path)   # a clear error for a non-GGUF file, before llama.cpp sees it
        if info.is_adapter:
            raise ModelError(f"{self.base_path} is a LoRA adapter, not a base model",
                             hint="pass it as a modifier (`bundle create --modifier NAME=FILE`)")
        self.threads = choose_threads(threads)
        self.batch_threads = batch_threads or self.threads
        trained = info.context_length or context_length
        self._stack = ExitStack()
        self._lock = threading.Lock()
        self._closed = False
        try:
            self._llm = load_llama(
                model_path=str(self.base_path), n_ctx=min(context_length, trained), n_batch=512,
                n_threads=self.threads, n_threads_batch=self.batch_threads, n_gpu_layers=gpu_layers,
                use_mmap=True, logits_all=False, verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"llama.cpp could not load {self.base_path} ({exc})",
                             hint="check the file with `edge-assistant bundle verify`, or re-download it") from exc
        self._stack.callback(self._llm.close)
        try:
            self._vocab = llama_cpp.llama_model_get_vocab(self._llm.model)
            self._piece_buf = ctypes.create_string_buffer(64)
            self.n_ctx = self._llm.n_ctx()
            meta = self._llm.metadata
            source = meta.get("tokenizer.chat_template")
            self.template_notice = None if source else "this model has no chat template; using ChatML"
            self.template = ChatTemplate(source or CHATML, bos_token=self._token_text(self._llm.token_bos()),
                                         eos_token=self._token_text(self._llm.token_eos()),
                                         origin=self.base_path.name)
            self._prompt = PromptFitter(self.template, Tokenizer(
                prompt=self.tokenize,
                text=lambda text: self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False),
                detokenize=lambda tokens: self._llm.detokenize(tokens).decode("utf-8", "ignore"),
            ), self.n_ctx, control_token_pattern(self._vocab))
            self.adapters = AdapterSet(self._llm.model, modifiers or {}, base_sha256)
            self._stack.callback(self.adapters.close)
        except BaseException:
            self._stack.close()  # never leave a loaded model behind a failed constructor
            raise
        self._active: Generation | None = None

    # -- EngineProtocol -------------------------------------------------------------

    @property
    def modifier_names(self) -> Sequence[str]:
        return tuple(self.adapters.specs)

    @property
    def description(self) -> str:
        return f"{self.name} ({self.base_path.name}, {self.threads} thread{'s' if self.threads != 1 else ''})"

    def generate(self, messages: Sequence[Message], *, modifier: str | None = None,
                 sampling: SamplingParams = SamplingParams()) -> Generation:
        result = GenerationResult()
        return Generation(lambda gen: self._stream(gen, list(messages), modifier, sampling), result)

    def close(self) -> None:
        """Free the model; a generation in progress is cancelled and finishes first."""
        if self._closed:
            return
        self._closed = True
        active = self._active
        if active is not None:
            active.cancel()
        # The stream holds the lock until it has stopped touching llama.cpp (within a token,
        # or after the prompt is read). A consumer that abandoned a stream without closing it
        # would hold it forever: then the memory is left to the process exit, never freed early.
        if self._lock.acquire(timeout=CLOSE_WAIT_S):
            try:
                self._stack.close()
            finally:
                self._lock.release()

    def __enter__(self) -> "LlamaEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- prompts --------------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        # The rendered template may already start with the BOS text; never add a second one.
        bos = self.template.bos_token
        add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab)) and not (bos and text.startswith(bos))
        return self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def build_prompt(self, messages: Sequence[Message], max_tokens: int) -> tuple[list[int], int, list[str]]:
        """Tokens of the rendered conversation that fit the window, turns dropped, notices."""
        prompt = self._prompt.fit(messages, max_tokens)
        return prompt.tokens, prompt.dropped, prompt.notices

    # -- modifiers ------------------------------------------------------------------

    def _select(self, modifier: str | None, notices: list[str]) -> str | None:
        """Apply ``modifier`` (or none) to the context, invalidating the prompt cache on change."""
        if modifier is not None:
            if modifier not in self.adapters.specs:
                known = ", ".join(self.adapters.specs) or "none in this bundle"
                raise ModifierError(f"unknown modifier '{modifier}'", hint=f"choose one of: {known}")
            if modifier in self.adapters.refused:
                notices.append(self.adapters.refused[modifier])
                modifier = None
        if self.adapters.apply(self._llm.ctx, modifier):
            self._invalidate_cache()
        return modifier

    def _invalidate_cache(self) -> None:
        # The KV cache and last logits were computed under other adapters.
        self._llm.reset()
        self._llm._ctx.kv_cache_seq_rm(-1, 0, -1)

    # -- generation -----------------------------------------------------------------

    def _stream(self, gen: Generation, messages: list[Message], modifier: str | None,
                sampling: SamplingParams) -> Iterator[str]:
        result = gen.result
        started = time.perf_counter()
        with self._lock:
            if self._closed:
                raise ModelError("the engine is closed", hint="restart edge-assistant")
            result.modifier = self._select(modifier, result.notices)
            tokens, result.dropped_turns, notices = self.build_prompt(messages, sampling.max_tokens)
            result.notices.extend(notices)
            result.prompt_tokens = len(tokens)
            limit = min(sampling.max_tokens, self.n_ctx - len(tokens))
            self._llm.set_seed(sampling.seed if sampling.seed is not None else random.randrange(2**31))
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            pieces: list[str] = []
            first_at = None
            finish = "length"
            self._active = gen
            stream = self._llm.generate(tokens, temp=sampling.temperature, top_p=sampling.top_p,
                                        top_k=40, min_p=0.05,
                                        repeat_penalty=sampling.repeat_penalty)
            try:
                for token in stream:
                    if gen.cancelled or self._closed:
                        finish = "cancelled"
                        break
                    if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                        finish = "stop"
                        break
                    if first_at is None:
                        first_at = time.perf_counter()
                        result.ttft_s = first_at - started
                    result.completion_tokens += 1
                    piece = decoder.decode(self._piece(token))
                    if piece:
                        pieces.append(piece)
                        yield piece
                    if gen.cancelled or self._closed:
                        finish = "cancelled"
                        break
                    if result.completion_tokens >= limit:
                        finish = "length"
                        break
            finally:
                self._active = None
                stream.close()
                tail = decoder.decode(b"", final=True)
                if tail:
                    pieces.append(tail)
                result.text = "".join(pieces)
                result.finish_reason = finish  # type: ignore[assignment]
                if first_at is not None and result.completion_tokens > 1:
                    result.decode_tok_s = (result.completion_tokens - 1) / max(time.perf_counter() - first_at, 1e-9)
        if tail:
            yield tail

    def next_token_logits(self, messages: Sequence[Message], *, modifier: str | None = None) -> np.ndarray:
        """Logits for the token after the rendered prompt, through the same cached path as generation."""
        with self._lock:
            notices: list[str] = []
            self._select(modifier, notices)
            tokens, _, _ = self.build_prompt(messages, MIN_REPLY_TOKENS)
            stream = self._llm.generate(tokens, temp=0.0)
            try:
                next(stream)
                ptr = llama_cpp.llama_get_logits_ith(self._llm.ctx, -1)
                n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
                return np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)),
                                             shape=(n_vocab,)).copy()
            finally:
                stream.close()

    def _piece(self, token: int, special: bool = False) -> bytes:
        """The bytes of one token (llama.cpp asks for a bigger buffer with a negative count)."""
        n = llama_cpp.llama_token_to_piece(self._vocab, token, self._piece_buf, len(self._piece_buf), 0, special)
        if n < 0:
            self._piece_buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, self._piece_buf, -n, 0, special)
        return self._piece_buf.raw[:n]

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self._piece(token, special=True).decode("utf-8", "replace")

