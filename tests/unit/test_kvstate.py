"""The kept-state store on its own: LRU order, the byte budget, notices (real llama.cpp: tests/integration)."""

from __future__ import annotations

import ctypes

from edge_assistant.runtime.kvstate import (KEPT, NO_STATE, RESTORED, SHARED, KeptState, StateKey, StateStore,
                                            common_prefix, reuse_text)
from edge_assistant.runtime.alora import invocation_start


def state(label: str, nbytes: int, adapter: str | None = "f" * 64, n_tokens: int = 10) -> KeptState:
    return KeptState(StateKey("b" * 64, adapter, 1.0, label), tuple(range(n_tokens)), (ctypes.c_uint8 * nbytes)())


def test_the_key_is_base_adapter_and_scale_never_the_label():
    assert StateKey("b", "a", 1.0, "'x'") == StateKey("b", "a", 1.0, "'renamed'")
    assert StateKey("b", "a", 1.0) != StateKey("b", "a", 0.5)
    assert StateKey("b", "a", 1.0) != StateKey("b", None, 1.0)


def test_past_the_budget_the_least_recently_kept_goes_first():
    store = StateStore(300)
    assert store.put(state("'x'", 100, "x" * 64)) == []
    assert store.put(state("'y'", 100, "y" * 64)) == []
    notices = store.put(state("'z'", 150, "z" * 64))
    assert [s.key.label for s in store.states()] == ["'y'", "'z'"] and store.nbytes == 250
    assert len(notices) == 1 and "'x'" in notices[0] and "reads the conversation again" in notices[0]


def test_taking_a_state_removes_it_and_putting_it_again_makes_it_the_newest():
    store = StateStore(1000)
    store.put(state("'x'", 10, "x" * 64))
    store.put(state("'y'", 10, "y" * 64))
    taken = store.take(StateKey("b" * 64, "x" * 64, 1.0))
    assert taken is not None and taken.key.label == "'x'" and len(store) == 1
    assert store.take(StateKey("b" * 64, "x" * 64, 1.0)) is None
    store.put(taken)
    assert [s.key.label for s in store.states()] == ["'y'", "'x'"]


def test_a_state_over_the_whole_budget_is_refused_with_how_to_keep_it_and_zero_keeps_none_silently():
    store = StateStore(50)
    (notice,) = store.put(state("'x'", 100))
    assert len(store) == 0 and "larger than kv_state_mb" in notice and "raise kv_state_mb" in notice
    off = StateStore(0)
    assert off.put(state("'x'", 1)) == [] and len(off) == 0


def test_prefix_and_invocation_search():
    assert common_prefix([1, 2, 3, 4], [1, 2, 9]) == 2 and common_prefix([], [1]) == 0
    assert invocation_start([5, 1, 2, 7, 1, 2, 8], [1, 2]) == 4
    assert invocation_start([5, 1, 7], [1, 2]) is None and invocation_start([1], []) is None


def test_the_why_words_say_what_was_reused_and_how_much_was_read():
    assert reuse_text(RESTORED, 1530, 41) == "reused a kept state, read 41 of 1530 tokens"
    assert reuse_text(KEPT, 100, 12).startswith("reused the kept state")
    assert reuse_text(SHARED, 100, 12).startswith("reused the base's kept state")
    assert reuse_text(NO_STATE, 100, 100) == "no kept state, read all 100 tokens"
    assert reuse_text("", 100, 100) == ""
