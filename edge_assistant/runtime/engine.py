"""The llama.cpp engine: one base model loaded once, modifiers swapped per message.

The model and context are owned here and freed in ``close()`` (idempotent).

A KV cache is only valid for the adapter configuration it was computed with.
The context's one working sequence holds the state of the configuration used
last; switching saves it as a snapshot and puts back the snapshot of the one
wanted, if kept (``runtime/kvstate.py``), so a turn reads only the tokens after
the longest common prefix with that configuration's state. An aLoRA modifier
has no state of its own: everything before its last invocation is the base's
state, shared, and the adapter is applied only from the invocation on.
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
from ..errors import ModelError
from ..hashing import sha256_file
from ..modifier_names import require_modifier
from .llama_load import load_llama
from .logits import output_logits
from .generation import Generation, GenerationResult, Message
from ..sampling import SamplingParams
from . import calculator
from .alora import invocation_start
from .kvstate import KEPT, MB, NO_STATE, RESTORED, SHARED, KeptState, StateKey, StateStore, common_prefix
from .modifier import AdapterSet, ModifierSpec
from .prompt import MIN_REPLY_TOKENS, PromptFitter, Tokenizer, control_token_pattern
from .template import CHATML, ChatTemplate
from ..threads import choose_threads

# How long close() waits for a generation in progress to stop before giving up on freeing.
CLOSE_WAIT_S = 120.0


class LlamaEngine:
    """Implements ``EngineProtocol`` on llama-cpp-python."""

    def __init__(self, base_path: str | Path, *, base_sha256: str | None = None,
                 modifiers: Mapping[str, ModifierSpec] | None = None, context_length: int = 4096,
                 threads: int = 0, batch_threads: int = 0, gpu_layers: int = 0, name: str = "",
                 kv_state_mb: int = 1024) -> None:
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
            # llama.cpp pads its context to a multiple of 256 cells, but llama-cpp-python's token and
            # logit buffers hold exactly the n_ctx asked for: a prompt is fitted to the smaller one.
            self.n_ctx = min(self._llm.n_ctx(), int(self._llm.input_ids.shape[0]))
            meta = self._llm.metadata
            source = meta.get("tokenizer.chat_template")
            self.template_notice = None if source else "this model has no chat template; using ChatML"
            self.template = ChatTemplate(source or CHATML, bos_token=self._token_text(self._llm.token_bos()),
                                         eos_token=self._token_text(self._llm.token_eos()),
                                         origin=self.base_path.name)
            self._prompt = PromptFitter(self.template, Tokenizer(
                prompt=self.tokenize,
                text=self._text_tokens,
                detokenize=lambda tokens: self._llm.detokenize(tokens).decode("utf-8", "ignore"),
            ), self.n_ctx, control_token_pattern(self._vocab))
            self.adapters = AdapterSet(self._llm.model, modifiers or {}, base_sha256)
            self._stack.callback(self.adapters.close)
        except BaseException:
            self._stack.close()  # never leave a loaded model behind a failed constructor
            raise
        self._active: Generation | None = None
        self._base_sha256 = base_sha256 or f"unhashed:{self.base_path.resolve()}"
        self._adapter_sha: dict[str, str] = {}
        self.states = StateStore(kv_state_mb * MB)
        self._stack.callback(self.states.close)
        self._live: StateKey | None = None            # whose state the working sequence holds
        self._names: dict[StateKey, str | None] = {}   # configuration -> modifier name (None: the base)
        self._pending: list[str] = []                 # notices from catch_up, told on the next turn
        self._tail: tuple[str, int] | None = None      # (aLoRA modifier, first position it computed)
        self._digits: np.ndarray | None = None         # token ids that go on with a number (calculator)

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

    def _text_tokens(self, text: str) -> list[int]:
        """Tokens of plain text inside a turn: no BOS, control tokens spelled out as text."""
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    def build_prompt(self, messages: Sequence[Message], max_tokens: int) -> tuple[list[int], int, list[str]]:
        """Tokens of the rendered conversation that fit the window, turns dropped, notices."""
        prompt = self._prompt.fit(messages, max_tokens)
        return prompt.tokens, prompt.dropped, prompt.notices

    # -- modifiers ------------------------------------------------------------------

    def _resolve(self, modifier: str | None, notices: list[str]) -> str | None:
        """The modifier that will answer: ``modifier``, or None (the base) if it is refused."""
        if modifier is not None:
            require_modifier(modifier, self.adapters.specs)
            if modifier in self.adapters.refused:
                notices.append(self.adapters.refused[modifier])
                modifier = None
        return modifier

    def _key(self, modifier: str | None) -> StateKey:
        if modifier is None:
            key = StateKey(self._base_sha256, None, 0.0, "the base")
        else:
            spec = self.adapters.specs[modifier]
            if modifier not in self._adapter_sha:
                self._adapter_sha[modifier] = spec.sha256 or sha256_file(spec.path)
            key = StateKey(self._base_sha256, self._adapter_sha[modifier], spec.scale, f"'{modifier}'")
        self._names[key] = modifier
        return key

    # -- kept states ----------------------------------------------------------------

    def _truncate(self, n: int) -> None:
        """Keep only the first ``n`` positions of the working sequence."""
        if n < self._llm.n_tokens:
            self._llm._ctx.kv_cache_seq_rm(0, n, -1)
            self._llm.n_tokens = n
            self._llm._requires_eval = True   # the last logits are not those of position n - 1

    def _save_live(self, notices: list[str]) -> None:
        """Snapshot the working sequence's KV cells under its configuration's key.

        llama.cpp's states hold no logits, so a prompt a restored state holds entirely has
        its last token read again (as llama-cpp-python does for any fully cached prompt).
        With an adapter applied, llama.cpp's results depend slightly on how a prompt is cut
        into batches: that replayed token's logits equal those of a reading in the same two
        pieces, not always those of one reading of the whole prompt.
        """
        if self._tail is not None:     # an aLoRA's positions are not the base's state
            self._truncate(self._tail[1])
            self._tail = None
        key, n = self._live, self._llm.n_tokens
        self._live = None
        if key is None or n == 0 or self.states.cap_bytes == 0:
            return
        ctx = self._llm.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        data = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, data, size, 0)
        if written == 0:
            return   # llama.cpp could not save it: the next turn under `key` simply reads again
        if written < size:
            data = (ctypes.c_uint8 * written).from_buffer_copy(data)
        notices.extend(self.states.put(KeptState(key, tuple(self._llm.input_ids[:n].tolist()), data)))

    def _make_live(self, key: StateKey, notices: list[str]) -> str:
        """Make ``key``'s state the working one; how (KEPT, RESTORED or NO_STATE)."""
        if self._live == key:
            return KEPT if self._llm.n_tokens else NO_STATE
        self._save_live(notices)
        self._llm.reset()
        self._llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        self._live = key
        kept = self.states.take(key)
        if kept is None:
            return NO_STATE
        if llama_cpp.llama_state_seq_set_data(self._llm.ctx, kept.data, len(kept.data), 0) != len(kept.data):
            self._llm._ctx.kv_cache_seq_rm(-1, 0, -1)
            return NO_STATE   # not accepted (cannot happen with our own snapshot): read from the start
        n = len(kept.tokens)
        self._llm.input_ids[:n] = kept.tokens
        self._llm.n_tokens = n   # reset() marked the logits stale: a fully kept prompt replays its last token
        return RESTORED

    def _prepare(self, modifier: str | None, tokens: list[int], result: GenerationResult) -> str | None:
        """Put the right state and adapter on the context for ``tokens``; returns who answers.

        Afterwards the working sequence holds the longest prefix of ``tokens`` it may reuse, and
        ``result`` says how much that was. An aLoRA modifier first gets the base's state read up
        to its last invocation, under the base; ``generate`` reads the rest under the adapter.
        """
        notices = result.notices
        notices.extend(self._pending)
        self._pending.clear()
        split = None
        if modifier is not None:
            invocation = self.adapters.invocation_tokens(modifier)
            if invocation is not None:
                split = invocation_start(tokens, invocation)
                if split is None:
                    notices.append(f"modifier '{modifier}' is an aLoRA and the prompt has no invocation "
                                   "(the start of an assistant turn) for it: the base answers")
                    modifier = None
        key = self._key(None if split is not None else modifier)
        how = self._make_live(key, notices)
        if self._tail is not None and self._tail != (modifier, split):
            self._truncate(self._tail[1])   # computed under another aLoRA, or before another invocation
            self._tail = None
        if split is not None and self._tail is None:
            self.adapters.apply(self._llm.ctx, None)
            reuse = common_prefix(self._llm.input_ids[:self._llm.n_tokens], tokens[:split])
            self._truncate(reuse)
            if reuse < split:
                self._llm.eval(tokens[reuse:split])
            self._tail = (modifier, split)  # type: ignore[assignment]
            how = SHARED if reuse else how
            result.read_tokens += split - reuse
            self.adapters.apply(self._llm.ctx, modifier)
            reuse = split
        else:
            self.adapters.apply(self._llm.ctx, modifier)
            reuse = common_prefix(self._llm.input_ids[:self._llm.n_tokens], tokens)
            if split is not None and how == KEPT:
                how = SHARED
        # generate() replays the last token when the whole prompt is kept, to get its logits.
        exact = reuse == len(tokens) == self._llm.n_tokens and not self._llm._requires_eval
        reuse = reuse if exact or reuse < len(tokens) else reuse - 1
        result.read_tokens += len(tokens) - reuse
        result.kv_state = how if result.read_tokens < len(tokens) else NO_STATE
        return modifier

    def catch_up(self, messages: Sequence[Message], *, max_tokens: int = 1024) -> int:
        """Bring every kept state up to ``messages``, so that switching back reads only what comes next.

        For idle time: the chat app calls it after a reply, while the user reads and types. Each
        kept configuration other than the working one reads, under its own adapter, the tokens it
        lacks (at most ``max_tokens`` each; a longer gap is left for its next turn). A turn that
        starts meanwhile waits for at most the one reading in progress. Returns tokens read.
        """
        with self._lock:
            if self._closed:
                return 0
            tokens, _, _ = self.build_prompt(messages, MIN_REPLY_TOKENS)
            read = 0
            if self._tail is not None and self._live is not None:
                # An aLoRA answered last: its reply goes into the base's state now, not on the next turn.
                self._truncate(self._tail[1])
                self._tail = None
                self.adapters.apply(self._llm.ctx, None)
                read += self._read_gap(tokens, max_tokens)
            keys = [s.key for s in self.states.states() if s.key in self._names]
        for key in keys:   # one state per lock: a turn that starts meanwhile waits for one reading only
            with self._lock:
                state = next((s for s in self.states.states() if s.key == key), None)
                if self._closed or state is None:
                    continue
                gap = len(tokens) - common_prefix(state.tokens, tokens)
                if gap <= 1 or gap > max_tokens:
                    continue
                self._make_live(key, self._pending)
                self.adapters.apply(self._llm.ctx, self._names[key])
                read += self._read_gap(tokens, max_tokens)
        return read

    def _read_gap(self, tokens: list[int], max_tokens: int) -> int:
        """Read what the working sequence lacks of ``tokens`` under the applied adapter (if not too much)."""
        reuse = common_prefix(self._llm.input_ids[:self._llm.n_tokens], tokens)
        if not 1 < len(tokens) - reuse <= max_tokens:
            return 0
        self._truncate(reuse)
        self._llm.eval(tokens[reuse:])
        return len(tokens) - reuse

    def clear_states(self) -> None:
        """Forget every kept state, the working one too: the next turn reads its whole prompt."""
        with self._lock:
            self.states.close()
            self._llm.reset()
            self._llm._ctx.kv_cache_seq_rm(-1, 0, -1)
            self._live, self._tail = None, None

    def kv_states(self) -> list[tuple[str, int, int]]:
        """(configuration, tokens, bytes) of every kept snapshot, least recently used first."""
        return [(s.key.label, len(s.tokens), s.nbytes) for s in self.states.states()]

    # -- generation -----------------------------------------------------------------

    def _stream(self, gen: Generation, messages: list[Message], modifier: str | None,
                sampling: SamplingParams) -> Iterator[str]:
        result = gen.result
        started = time.perf_counter()
        with self._lock:
            if self._closed:
                raise ModelError("the engine is closed", hint="restart edge-assistant")
            modifier = self._resolve(modifier, result.notices)
            tokens, result.dropped_turns, notices = self.build_prompt(messages, sampling.max_tokens)
            result.notices.extend(notices)
            result.prompt_tokens = len(tokens)
            result.modifier = self._prepare(modifier, tokens, result)
            limit = min(sampling.max_tokens, self.n_ctx - len(tokens))
            self._llm.set_seed(sampling.seed if sampling.seed is not None else random.randrange(2**31))
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            pieces: list[str] = []
            first_at = None
            finish = "length"
            self._active = gen
            def start(sequence: list[int]) -> Iterator[int]:
                return self._llm.generate(sequence, temp=sampling.temperature, top_p=sampling.top_p,
                                          top_k=sampling.top_k, min_p=sampling.min_p,
                                          repeat_penalty=sampling.repeat_penalty)
            stream = start(tokens)
            picked: int | None = None    # a token chosen here after a computed value, not read yet
            after_value = False          # the token just processed follows a computed value
            rng = np.random.default_rng(sampling.seed)
            try:
                while True:
                    if picked is not None:
                        token, picked, from_stream = picked, None, False
                    else:
                        try:
                            token, from_stream = next(stream), True
                        except StopIteration:
                            break
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
                    value = calculator.completion("".join(pieces)) if sampling.calculator and "=" in piece else None
                    forced = self._text_tokens(value) if value else []
                    if forced and result.completion_tokens + len(forced) + 1 < limit:
                        # Read the sampled token and the value, then choose what follows it here:
                        # anything but more digits, which would turn "270" into "270575".
                        stream.close()
                        self._llm.eval([token] + forced)
                        result.completion_tokens += len(forced)
                        result.calculated += 1
                        pieces.append(value)
                        yield value
                        picked, after_value = self._pick_after_value(sampling, rng), True
                        continue
                    if not from_stream:
                        if after_value and piece in (".", ","):
                            # "270." may still become "270.5": the token after the point is chosen here too.
                            self._llm.eval([token])
                            picked, after_value = self._pick_after_value(sampling, rng), False
                            continue
                        after_value = False
                        stream = start(self._llm.input_ids[:self._llm.n_tokens].tolist() + [token])
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

    def _pick_after_value(self, sampling: SamplingParams, rng: np.random.Generator) -> int:
        """The next token after a computed value, from the last logits: never one that goes on with digits.

        Greedy at temperature 0; otherwise drawn from the ``top_k`` most likely at ``temperature``.
        """
        logits = output_logits(self._llm.ctx, -1, llama_cpp.llama_vocab_n_tokens(self._vocab)).astype(np.float64)
        logits[self._digit_tokens()] = -np.inf
        if sampling.temperature <= 0:
            return int(np.argmax(logits))
        k = max(1, min(sampling.top_k or len(logits), len(logits)))
        top = np.argpartition(-logits, k - 1)[:k]
        weights = np.exp((logits[top] - logits[top].max()) / sampling.temperature)
        return int(rng.choice(top, p=weights / weights.sum()))

    def _digit_tokens(self) -> np.ndarray:
        """Ids of the tokens that continue a number: a digit first, or "." or "," and then a digit."""
        if self._digits is None:
            n = llama_cpp.llama_vocab_n_tokens(self._vocab)
            self._digits = np.array([t for t in range(n) if calculator.continues_number(self._piece(t))],
                                    dtype=np.int64)
        return self._digits

    def next_token_logits(self, messages: Sequence[Message], *, modifier: str | None = None) -> np.ndarray:
        """Logits for the token after the rendered prompt, through the same cached path as generation."""
        with self._lock:
            result = GenerationResult()
            modifier = self._resolve(modifier, result.notices)
            tokens, _, _ = self.build_prompt(messages, MIN_REPLY_TOKENS)
            self._prepare(modifier, tokens, result)
            stream = self._llm.generate(tokens, temp=0.0)
            try:
                next(stream)
                return output_logits(self._llm.ctx, -1, llama_cpp.llama_vocab_n_tokens(self._vocab))
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

