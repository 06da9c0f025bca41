"""The router's small parts on their own: keyword table, follow-up cues, calibration, batch reader."""

from __future__ import annotations

import io

import numpy as np
import pytest

from edge_assistant.errors import RouterError, UsageError
from edge_assistant.router.calibration import Calibrator, softmax
from edge_assistant.router.default_keywords import DEFAULT_KEYWORD_RULES
from edge_assistant.router.followup import detect
from edge_assistant.router.jsonl import read_prompts
from edge_assistant.router.keywords import KeywordRule, KeywordScorer, rules_from_recipe, squash

ROUTES = ("none", "code", "reasoning", "automation")


def test_each_keyword_rule_counts_once_however_often_it_matches():
    scorer = KeywordScorer({"code": [KeywordRule(r"\bpython\b", 2.0)]})
    once, _ = scorer.score("python", ROUTES)
    many, hits = scorer.score("python " * 500, ROUTES)
    assert once == many == [0.0, 2.0, 0.0, 0.0]
    assert [h.label for h in hits] == ["python"]


def test_keywords_match_regardless_of_case_and_negative_weights_count_against():
    scorer = KeywordScorer({"code": [KeywordRule(r"\bjava\b", 2.0), KeywordRule(r"\bisland\b", -1.5)]})
    scores, _ = scorer.score("Java the ISLAND in Indonesia", ROUTES)
    assert scores[1] == pytest.approx(0.5)


def test_an_uppercase_or_invalid_pattern_is_refused_when_the_table_is_built():
    with pytest.raises(RouterError, match="lowercase"):
        KeywordScorer({"code": [KeywordRule(r"\bTypeError\b", 1.0)]})
    with pytest.raises(RouterError, match="not a valid regex"):
        KeywordScorer({"code": [KeywordRule(r"(unclosed", 1.0)]})
    KeywordScorer({"code": [KeywordRule(r"\d+\s\S", 1.0)]})  # escapes like \S are not uppercase letters


def test_recipe_rules_may_be_tuples_tables_or_rules():
    rules = rules_from_recipe({"code": [(r"\bdef\b", 1), {"pattern": r"\bclass\b", "weight": 2.0, "note": "oop"},
                                        KeywordRule(r"\brust\b", 1.5)]})
    assert [r.weight for r in rules["code"]] == [1.0, 2.0, 1.5]
    with pytest.raises(RouterError, match="not \\(pattern, weight"):
        rules_from_recipe({"code": ["just a string"]})


def test_the_default_table_compiles_and_its_rows_say_why():
    KeywordScorer(DEFAULT_KEYWORD_RULES)
    assert all(rule.note for rows in DEFAULT_KEYWORD_RULES.values() for rule in rows)


@pytest.mark.parametrize("text, route", [
    ("Why does my Rust code panic with index out of bounds?", "code"),
    ("What is the probability of two sixes in a row?", "reasoning"),
    ("Add a crontab line that runs backup.sh nightly", "automation"),
    ("Write a haiku about rain", "none"),
])
def test_the_default_table_points_at_the_right_route_for_typical_requests(text, route):
    scores, _ = KeywordScorer(DEFAULT_KEYWORD_RULES).score(text, ROUTES)
    assert ROUTES[int(np.argmax(scores))] == route


def test_squash_keeps_sign_and_order_but_compresses_large_scores():
    assert squash(0.0) == 0.0
    assert squash(-2.0) == -squash(2.0)
    assert squash(1.0) < squash(2.0) < squash(50.0) < 5


@pytest.mark.parametrize("text", ["now make it faster", "and for 10?", "what about negative numbers?",
                                  "also add tests", "make it shorter", "why?", "in Rust?",
                                  "can you explain that?", "OK, now sort it descending"])
def test_short_continuations_are_follow_ups(text):
    assert detect(text).is_followup


@pytest.mark.parametrize("text", ["Write a Python function that reverses a string",
                                  "Why is the sky blue?", "What is the capital of Peru?", "",
                                  "now " + "word " * 20])
def test_standalone_requests_are_not_follow_ups(text):
    assert not detect(text).is_followup


def test_softmax_is_stable_for_large_logits():
    probs = softmax(np.array([1000.0, 999.0, -1000.0]))
    assert np.isfinite(probs).all() and probs.sum() == pytest.approx(1.0)
    assert probs[0] > probs[1] > probs[2]


def test_a_calibration_with_wrong_shapes_is_refused():
    good = {"features": ["a", "b"], "mean": [0, 0], "scale": [1, 1], "weights": [[1, 0], [0, 1]], "bias": [0, 0]}
    assert Calibrator.from_dict(good, 2).weights.shape == (2, 2)
    with pytest.raises(RouterError, match="wrong shapes"):
        Calibrator.from_dict({**good, "bias": [0, 0, 0]}, 2)
    with pytest.raises(RouterError, match="wrong shapes"):
        Calibrator.from_dict({**good, "scale": [1, 0]}, 2)
    with pytest.raises(RouterError, match="malformed"):
        Calibrator.from_dict({"features": ["a"]}, 2)


def test_the_batch_reader_skips_blank_lines_and_names_the_bad_one():
    assert read_prompts(io.StringIO('{"prompt": "a"}\n\n{"prompt": "b", "x": 1}\n'), "f") == ["a", "b"]
    with pytest.raises(UsageError, match="f:3 is not JSON"):
        read_prompts(io.StringIO('{"prompt": "a"}\n\n{oops\n'), "f")
