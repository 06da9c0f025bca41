"""Fitting a long conversation into the window: the old quadratic loop vs runtime/prompt.py.

    python benchmarks/prompt_fit.py [--quick] [--message-bytes 2048] [--context 2048]

The baseline, measured in the same run on the same engine (real SmolLM2-135M
tokenizer and chat template), is the loop `LlamaEngine.build_prompt` used
before: drop the oldest turn, re-render and re-tokenize everything, repeat.
Both must return the same tokens; the table says whether they did.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_assistant.runtime.engine import LlamaEngine  # noqa: E402
from edge_assistant.runtime.factory import embedded_demo_gguf  # noqa: E402
from edge_assistant.runtime.generation import Message  # noqa: E402
from edge_assistant.runtime.prompt import MIN_REPLY_TOKENS  # noqa: E402

WORDS = ("the", "model", "answers", "offline", "with", "a", "small", "window", "and", "code", "runs", "fast",
         "prompt", "tokens", "drop", "oldest", "turn", "first", "history", "stays")


def conversation(n: int, message_bytes: int, seed: int = 0) -> list[Message]:
    rng = random.Random(seed)
    messages = [Message("system", "You are a helpful assistant.")]
    for i in range(n):
        words: list[str] = []
        while sum(len(w) + 1 for w in words) < message_bytes:
            words.append(rng.choice(WORDS))
        messages.append(Message("user" if i % 2 == 0 else "assistant", " ".join(words)))
    if messages[-1].role != "user":
        messages.append(Message("user", "and now?"))
    return messages


def old_build_prompt(engine: LlamaEngine, messages: list[Message], max_tokens: int) -> tuple[list[int], int]:
    """The pre-prompt.py loop, kept here as the baseline (without the last-message truncation)."""
    fitter = engine._prompt
    reserve = min(max_tokens, engine.n_ctx // 2)
    budget = engine.n_ctx - max(reserve, MIN_REPLY_TOKENS)
    systems = [m.content for m in messages if m.role == "system"]
    system = [Message("system", "\n\n".join(systems))] if systems else []
    turns = [Message(m.role, fitter.neutralize(m.content)) for m in messages if m.role != "system"]
    dropped = 0
    tokens = engine.tokenize(engine.template.render(system + turns))
    while len(tokens) > budget and len(turns) > 1:
        turns.pop(0)
        dropped += 1
        while len(turns) > 1 and turns[0].role != "user":
            turns.pop(0)
            dropped += 1
        tokens = engine.tokenize(engine.template.render(system + turns))
    return tokens, dropped


def timed(fn, repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter conversations (well under a minute)")
    parser.add_argument("--message-bytes", type=int, default=2048)
    parser.add_argument("--context", type=int, default=2048)
    parser.add_argument("--max-tokens", type=int, default=256)
    args = parser.parse_args()
    counts = (12, 25, 50) if args.quick else (50, 100, 200)
    repeats = 1   # the old loop at 200 messages takes over a minute on a busy 2-core machine
    engine = LlamaEngine(embedded_demo_gguf(), context_length=args.context, threads=1)
    try:
        print(f"model {engine.base_path.name}, context {engine.n_ctx} tokens, {args.message_bytes}-byte messages, "
              f"best of {repeats}")
        print(f"{'messages':>8} {'dropped':>8} {'old s (baseline)':>16} {'new s':>9} {'old/new':>8}  same tokens")
        for n in counts:
            messages = conversation(n, args.message_bytes)
            old_s, (old_tokens, old_dropped) = timed(lambda: old_build_prompt(engine, messages, args.max_tokens),
                                                     repeats)
            new_s, (new_tokens, new_dropped, _) = timed(lambda: engine.build_prompt(messages, args.max_tokens),
                                                        repeats)
            same = old_tokens == new_tokens and old_dropped == new_dropped
            print(f"{len(messages):>8} {new_dropped:>8} {old_s:>16.3f} {new_s:>9.3f} {old_s / new_s:>7.1f}x  "
                  f"{'yes' if same else 'NO'}")
    finally:
        engine.close()


if __name__ == "__main__":
    main()
