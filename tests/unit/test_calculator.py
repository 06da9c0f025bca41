"""The reply calculator's reading of a sum: which text ends with one, and its value."""

from __future__ import annotations

import pytest

from edge_assistant.runtime.calculator import completion, continues_number


@pytest.mark.parametrize("text, value", [
    ("- cost = 45 x 6 =", " 270"),                         # the bullet's dash is not a minus
    ("First, 45 km / 1.5 hours =", " 30"),                 # one unit word after a number
    ("Step 1: cost = 12 weeks x $15 =", " $180"),
    ("the total is $91 / 7 =", " $13"),
    ("(2 + 3) * 4 =", " 20"),
    ("2 + 3 * 4 =", " 14"),                                # precedence
    ("the first part (3 x 5 =", " 15"),                    # an unclosed "(" before the sum is left out
    ("-8 + 13 =", " 5"),                                   # an attached minus negates
    ("- 8 + 13 = ", "21"),                                 # ends with a space: no second one
    ("1,250 + 250 =", " 1500"),
    ("7 - 10 =", " -3"),
    ("1 / 3 =", " 0.3333"),
    ("0.1 + 0.2 =", " 0.3"),
    ("45×6=", " 270"),
    ("5 x 3 x 2 =", " 30"),
    ("10 ÷ 4 =", " 2.5"),
    ("3 x 4 = 12, 12 + 1 =", " 13"),
    ("Total: 3 + 4 =", " 7"),
    ("We add them.\n19 + 23 =", " 42"),                    # only the last line is read
])
def test_a_sum_before_the_equals_sign_gets_its_value(text, value):
    assert completion(text) == value


@pytest.mark.parametrize("text", [
    "x = 3 * 4",                          # no "=" at the end
    "he had 5 apples and 3 =",            # no operator
    "Answer: 42 =",
    "2x + 3 =",                           # algebra, not arithmetic
    "a1 + 2 =",                           # the middle of a word
    "10 / 0 =",
    "5 * (3 =",                           # never closed
    "the first part (3 x 5 = 15) =",
    "if a == 3 * 4",
    "3 * 4 ==",
    "3 * 4 <=",
    "20% of 50 =",
    "Then, 14:40 - 1.5 =",                # a clock time
    "```python\nprint(3 * 4) =",          # inside a code block
    "",
    "=",
])
def test_anything_else_gets_nothing(text):
    assert completion(text) is None


def test_code_after_a_closed_fence_is_prose_again():
    assert completion("```\ny = 2\n```\nSo 6 * 7 =") == " 42"


@pytest.mark.parametrize("piece, goes_on", [
    (b"7", True), (b"75", True), (b".5", True), (b",000", True),
    (b".", False), (b" 7", False), (b" apples", False), (b".\n", False), (b"\n", False), (b"", False),
])
def test_which_tokens_would_go_on_with_a_number(piece, goes_on):
    assert continues_number(piece) is goes_on
