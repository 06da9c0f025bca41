"""What switching modifiers costs the user, measured on a build's own files (issue 11).

A made-up conversation of about ``tokens`` prompt tokens is read by the runtime's
engine (kept states, aLoRA prefix sharing: exactly the chat app's path) under the
first modifier X, then the next turns switch to each other configuration Y in turn
(every other modifier, then the base alone) and back:

    X (first read) -> X (same) -> Y1 (switch) -> X (switch back) -> X (same) -> Y2 (switch) -> ...

Each turn's time to first token is given as a ratio to the median same-modifier
turn, measured in the same run, with the tokens it read. For LoRA the first switch
reads the whole conversation (no kept state yet); an aLoRA switch reads only what
follows the base prefix that the base and every aLoRA share. `benchmarks/switch_cost.py` runs the same
timeline on random adapters at several sizes; the evaluate stage runs it on the
bundle it is about to ship, so REPORT.md shows the switch cost of that bundle's kind.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..runtime.engine import LlamaEngine
from ..runtime.generation import Message
from ..runtime.kvstate import MB
from ..sampling import SamplingParams

SYSTEM = Message("system", "You are a helpful assistant.")
TOPICS = ["the water cycle", "how bread rises", "the rules of chess", "why leaves change colour",
          "how a bicycle gear works", "the history of the printing press", "how vaccines train the body",
          "what makes a bridge strong", "how bees make honey", "the phases of the moon",
          "how a refrigerator cools", "why the sea is salty", "how glass is made", "the life of a star"]
ANSWER = ("Here is a short explanation of {t}. It starts with a simple idea, then each step follows from the "
          "one before, and small details matter more than they seem at first. In everyday life you can see "
          "{t} at work if you look closely, and once you notice it you will see it everywhere.")
FOLLOW_UPS = ["Can you say that again in two sentences?", "What is the most surprising part of it?",
              "Give me one everyday example.", "What would a child ask about it next?"]


def conversation(engine: LlamaEngine, target: int) -> list[Message]:
    """A made-up chat of about ``target`` prompt tokens, ending with a user question."""
    messages, i, longest = [SYSTEM], 0, -1
    while True:
        topic = TOPICS[i % len(TOPICS)]
        candidate = messages + [Message("user", f"Please explain {topic}.")]
        n = len(engine.build_prompt(candidate, 64)[0])
        if n >= target or n <= longest:  # long enough, or the context window keeps only the latest turns
            return candidate
        longest = n
        messages = candidate + [Message("assistant", ANSWER.format(t=topic))]
        i += 1


class Timeline:
    """Turns of one conversation on one engine: each appends the reply and a follow-up question."""

    def __init__(self, engine: LlamaEngine, start: list[Message], reply_tokens: int, catch_up: bool = False) -> None:
        self.engine, self.messages, self.reply_tokens, self.n = engine, list(start), reply_tokens, 0
        self.catch_up = catch_up

    def turn(self, modifier: str | None) -> Any:
        sampling = SamplingParams(max_tokens=self.reply_tokens, temperature=0.0, repeat_penalty=1.1)
        result = self.engine.generate(self.messages, modifier=modifier, sampling=sampling).run()
        self.messages.append(Message("assistant", result.text or "OK."))
        if self.catch_up:   # what the chat app does while the user reads and types: not timed
            self.engine.catch_up(self.messages)
        self.messages.append(Message("user", FOLLOW_UPS[self.n % len(FOLLOW_UPS)]))
        self.n += 1
        return result


@dataclass(frozen=True)
class SwitchCost:
    kind: str                 # "lora", "alora", or "alora/lora" when the modifiers differ
    x: str
    ys: tuple[str, ...]       # what X switches to and back from, in order ("base": the base alone)
    tokens: int               # prompt tokens of the first turn
    turns: tuple[dict[str, Any], ...]   # {"turn", "modifier", "prompt_tokens", "read_tokens", "ttft_ms", "ratio"}
    states_mb: float          # memory the kept states hold at the end

    def ratio(self, turn: str) -> float:
        """The worst (largest) ratio of the turns called ``turn``."""
        return max(t["ratio"] for t in self.turns if t["turn"] == turn)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "x": self.x, "ys": list(self.ys), "tokens": self.tokens,
                "turns": list(self.turns), "switch_ratio": round(self.ratio("switch"), 3),
                "switch_back_ratio": round(self.ratio("switch back"), 3), "states_mb": round(self.states_mb, 1)}


def plan(x: str, ys: Sequence[str | None]) -> list[tuple[str, str | None]]:
    """(turn, modifier) of the timeline: X twice, then each Y and back to X, then X again."""
    turns: list[tuple[str, str | None]] = [("first read", x), ("same", x)]
    for y in ys:
        turns += [("switch", y), ("switch back", x), ("same", x)]
    return turns


def measure_switch_cost(engine: LlamaEngine, x: str, ys: Sequence[str | None], *,
                        tokens: int, reply_tokens: int = 16, catch_up: bool = False) -> SwitchCost:
    """The plan(x, ys) timeline on ``engine`` (None in ``ys``: the base alone); kinds come from its specs."""
    engine.clear_states()
    line = Timeline(engine, conversation(engine, tokens), reply_tokens, catch_up)
    steps = plan(x, ys)
    results = [(what, line.turn(who)) for what, who in steps]
    same = statistics.median(r.ttft_s for what, r in results if what == "same")
    turns = tuple({"turn": what, "modifier": who or "base", "prompt_tokens": r.prompt_tokens,
                   "read_tokens": r.read_tokens, "ttft_ms": round(r.ttft_s * 1000, 1),
                   "ratio": round(r.ttft_s / same, 3)} for (what, r), (_w, who) in zip(results, steps))
    used = {engine.adapters.specs[name].kind for name in (x, *ys) if name is not None}
    return SwitchCost("/".join(sorted(used)), x, tuple(y or "base" for y in ys),
                      results[0][1].prompt_tokens, turns, engine.states.nbytes / MB)
