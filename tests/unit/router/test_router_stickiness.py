"""Short follow-ups keep the previous modifier unless the new message clearly belongs elsewhere."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.builder

# (message, expected route, reason must mention a follow-up)
CONVERSATION = [
    ("Write a Python function that merges two sorted lists.", "code", False),
    ("now make it faster", "code", True),
    ("what about in Rust?", "code", True),
    ("and add unit tests for it", "code", True),
    ("A train covers 210 km in 3.5 hours. What is its average speed?", "reasoning", False),
    ("and for 280 km?", "reasoning", True),
    ("now back that folder up every night with cron", "automation", True),
    ("also make it email me when it fails", "automation", True),
    ("Tell me a joke about penguins.", None, False),
]


def test_a_scripted_conversation_keeps_or_switches_modifiers_as_a_person_would(router):
    previous = None
    for message, expected, followup in CONVERSATION:
        decision = router.route(message, previous=previous)
        assert decision.modifier == expected, f"{message!r}: {decision.reason}"
        assert ("follow-up" in decision.reason) == followup, f"{message!r}: {decision.reason}"
        previous = decision.modifier


def test_follow_ups_alone_do_not_carry_the_modifier_without_a_previous_one(router):
    alone = router.route("now make it faster")
    assert alone.modifier != "code" or alone.confidence < router.route("now make it faster",
                                                                       previous="code").confidence
    assert "follow-up" not in alone.reason


def test_strong_evidence_beats_stickiness(router):
    decision = router.route("now what is 15% of 80?", previous="code")
    assert decision.modifier == "reasoning"
    assert "strong" in decision.reason


def test_a_long_new_request_is_not_treated_as_a_follow_up(router):
    message = ("Now I'd like a completely different thing: write a warm thank-you letter to my neighbour "
               "who looked after our cat while we were away")
    decision = router.route(message, previous="code")
    assert decision.modifier is None
    assert "follow-up" not in decision.reason


def test_an_unknown_previous_modifier_is_ignored(router):
    decision = router.route("now make it faster", previous="poetry")
    assert "follow-up" not in decision.reason
