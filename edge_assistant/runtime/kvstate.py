"""Kept conversation states: the KV cache of the prefix each adapter configuration last read.

A configuration is the base alone or the base with one modifier at one scale. Its key is the
base's sha256, the adapter's sha256 and the scale, so a state is never reused under another
configuration (llama.cpp #26207 is llama-server doing exactly that).

The engine reads in llama.cpp's one working sequence. When the next turn needs another
configuration, the working sequence is saved here as a snapshot (``llama_state_seq_get_data``)
and the wanted configuration's snapshot, if one is kept, is put back (``llama_state_seq_set_data``).
``benchmarks/switch_cost.py`` measures this against the other design, one llama.cpp sequence per
configuration in one context: that one switches for free but allocates every configuration's
cache up front, in one unified cache that every decode step attends over (see docs/chat.md for
the numbers and why snapshots won).

The snapshots together hold at most ``kv_state_mb`` (a setting); past it the least recently used
are dropped, and the engine passes the notice on to the user.
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Sequence

MB = 1 << 20

# How a turn's prompt was read (GenerationResult.kv_state).
KEPT = "kept"            # the configuration's state was the working one
RESTORED = "restored"    # its snapshot was put back
SHARED = "shared"        # an aLoRA turn: the base's state up to the invocation
NO_STATE = "none"        # nothing kept for this configuration: the whole prompt was read


@dataclass(frozen=True)
class StateKey:
    """One adapter configuration. ``label`` (the modifier's name, or "base") is for messages only."""

    base_sha256: str
    adapter_sha256: str | None
    scale: float
    label: str = field(default="base", compare=False)


@dataclass
class KeptState:
    key: StateKey
    tokens: tuple[int, ...]
    data: "ctypes.Array[ctypes.c_uint8]"

    @property
    def nbytes(self) -> int:
        return len(self.data)


class StateStore:
    """Snapshots by configuration, least recently used first, within a byte budget."""

    def __init__(self, cap_bytes: int) -> None:
        self.cap_bytes = max(0, int(cap_bytes))
        self._states: "OrderedDict[StateKey, KeptState]" = OrderedDict()

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self._states.values())

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, key: object) -> bool:
        return key in self._states

    def states(self) -> list[KeptState]:
        """The kept states, least recently used first."""
        return list(self._states.values())

    def put(self, state: KeptState) -> list[str]:
        """Keep ``state`` (replacing that configuration's older one); notices for what had to go."""
        self._states.pop(state.key, None)
        if self.cap_bytes == 0:
            return []  # keeping states is switched off: nothing to say on every switch
        if state.nbytes > self.cap_bytes:
            return [f"the conversation state of {state.key.label} ({len(state.tokens)} tokens, "
                    f"{_mb(state.nbytes)}) is larger than kv_state_mb ({_mb(self.cap_bytes)}) and was not kept: "
                    f"the next turn with {state.key.label} reads the conversation again "
                    "(raise kv_state_mb in settings to keep it)"]
        notices = []
        while self._states and self.nbytes + state.nbytes > self.cap_bytes:
            _, old = self._states.popitem(last=False)
            notices.append(f"kv_state_mb ({_mb(self.cap_bytes)}) is full: dropped the least recently used "
                           f"conversation state, {old.key.label}'s ({len(old.tokens)} tokens, {_mb(old.nbytes)}); "
                           f"the next turn with {old.key.label} reads the conversation again")
        self._states[state.key] = state
        return notices

    def take(self, key: StateKey) -> KeptState | None:
        """Remove and return ``key``'s state (it becomes the working one), if kept."""
        return self._states.pop(key, None)

    def close(self) -> None:
        self._states.clear()


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def reuse_text(kv_state: str, prompt_tokens: int, read_tokens: int) -> str:
    """The chat app's "why" words for how a turn's prompt was read ("" if not recorded)."""
    if not kv_state or not prompt_tokens:
        return ""
    if read_tokens < prompt_tokens and kv_state in (KEPT, RESTORED, SHARED):
        what = {KEPT: "reused the kept state", RESTORED: "reused a kept state",
                SHARED: "reused the base's kept state"}[kv_state]
        return f"{what}, read {read_tokens} of {prompt_tokens} tokens"
    return f"no kept state, read all {prompt_tokens} tokens"


def _mb(nbytes: int) -> str:
    return f"{nbytes / MB:.1f} MB"
