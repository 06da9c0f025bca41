"""Sums in replies are computed, not guessed.

A small model often sets a word problem up right and then multiplies wrong ("45 x 6 = 260").
When the text of a reply ends with a plain arithmetic expression and "=", outside a code
block, the engine feeds the expression's value in as the reply's next tokens
(``runtime/engine.py``), and the model goes on from the right number.

What counts as an expression, on the reply's last line, right before the "=":
numbers (``1,250``, ``1.5``, ``$12``, ``-8`` with the minus attached), each optionally followed by
one unit word (``12 weeks``, ``45 km``), joined by at least one of ``+ - x × * / ÷``, with
parentheses. Anything else before it (words, ``:``, another ``=``) ends the expression. A value
above 10^15 or with a denominator above 10^12, or a division by zero, is left to the model. Nothing is evaluated but these
numbers and operators: the parser below reads nothing else.
"""

from __future__ import annotations

import re
from fractions import Fraction

# One token of an expression: a number with an optional unit word, an attached minus,
# an operator or a parenthesis. Any other character ends the expression read so far.
_TOKEN = re.compile(r"""
    (?P<num>\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w.,]\w|\w)(?:[ ](?![xX]\b)[A-Za-z]{1,12}\b)?)
  | (?P<neg>-(?=\$?\d))
  | (?P<op>[-+*/×÷]|[xX](?=\s))
  | (?P<paren>[()])
  | (?P<space>\s+)
""", re.VERBOSE)
_LONGEST_LINE = 400        # only the end of a long line is read


def _tokens(line: str) -> list[tuple[str, str]]:
    """The run of expression tokens that ends ``line`` (kind, text), spaces left out.

    A run that starts right after a digit and ":" is part of a clock time (``14:40 - 1.5``),
    not an expression: then there is none.
    """
    out: list[tuple[str, str]] = []
    run_start = 0
    pos = 0
    while pos < len(line):
        m = _TOKEN.match(line, pos)
        prev = line[pos - 1] if pos else " "
        if m is not None and m.lastgroup in ("num", "neg") and (prev.isalnum() or prev in "._$"):
            m = None            # the middle of a word or a number: not the start of one
        if m is not None and m.lastgroup == "neg" and prev not in " \t(":
            m = None            # a minus written against a number only negates after a space or "("
        if m is None or (m.lastgroup == "op" and m.group(0) in "xX" and prev not in " \t"):
            out.clear()         # a word, ":", "=", ...: what came before is not this expression
            pos += 1
            run_start = pos
            continue
        if m.lastgroup != "space":
            out.append((m.lastgroup, m.group(0)))
        pos = m.end()
    if run_start >= 2 and line[run_start - 1] == ":" and line[run_start - 2].isdigit():
        return []
    return out


def _number(text: str) -> Fraction:
    digits = re.sub(r"[ ]?[A-Za-z]+$", "", text).replace("$", "").replace(",", "")
    return Fraction(digits)


class _Parser:
    """expr := term (('+'|'-') term)*; term := atom (('*'|'/') atom)*; atom := num | '(' expr ')'."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens, self.i, self.ops = tokens, 0, 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def expr(self) -> Fraction:
        value = self.term()
        while (t := self.peek()) is not None and t[1] in ("+", "-"):
            self.i += 1
            self.ops += 1
            right = self.term()
            value = value + right if t[1] == "+" else value - right
        return value

    def term(self) -> Fraction:
        value = self.atom()
        while (t := self.peek()) is not None and t[0] == "op" and t[1] not in ("+", "-"):
            self.i += 1
            self.ops += 1
            right = self.atom()
            if t[1] in ("/", "÷"):
                if right == 0:
                    raise ZeroDivisionError
                value = value / right
            else:
                value = value * right
        return value

    def atom(self) -> Fraction:
        t = self.peek()
        if t is None:
            raise ValueError("expression ends early")
        self.i += 1
        if t[0] == "num":
            return _number(t[1])
        if t[0] == "neg":
            return -self.atom()
        if t == ("paren", "("):
            value = self.expr()
            if self.peek() != ("paren", ")"):
                raise ValueError("unclosed parenthesis")
            self.i += 1
            return value
        raise ValueError(f"unexpected {t[1]!r}")


def _evaluate(tokens: list[tuple[str, str]]) -> tuple[Fraction, bool] | None:
    """The value of the longest suffix of ``tokens`` that is an expression with an operator."""
    for start in range(len(tokens)):
        if tokens[start][0] not in ("num", "neg") and tokens[start] != ("paren", "("):
            continue
        parser = _Parser(tokens[start:])
        try:
            value = parser.expr()
        except (ValueError, ArithmeticError):     # ArithmeticError includes ZeroDivisionError
            continue
        if parser.i == len(parser.tokens) and parser.ops:
            dollars = any(kind == "num" and "$" in text for kind, text in tokens[start:])
            return value, dollars
    return None


def format_value(value: Fraction, dollars: bool = False) -> str:
    """``270``, ``22.5``, ``0.3333``, ``-4``, ``$13``: at most four decimals, no trailing zeros."""
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value.denominator == 1:
        body = str(value.numerator)
    else:
        body = f"{float(value):.4f}".rstrip("0").rstrip(".")
    return f"{sign}{'$' if dollars else ''}{body}"


def completion(text: str) -> str | None:
    """What follows ``text`` if it ends with an arithmetic expression and "=": the value (or None).

    ``None`` inside a code block (an odd number of ``` fences), after ``==``, ``<=``, ``>=``
    or ``!=``, and when no expression with an operator stands right before the "=".
    """
    stripped = text.rstrip(" ")
    if not stripped.endswith("=") or stripped[-2:-1] in ("=", "<", ">", "!"):
        return None
    if text.count("```") % 2:
        return None
    line = stripped[:-1].rsplit("\n", 1)[-1][-_LONGEST_LINE:]
    tokens = _tokens(line)
    if not tokens:
        return None
    found = _evaluate(tokens)
    if found is None:
        return None
    value, dollars = found
    if value.denominator > 10**12 or abs(value) > 10**15:
        return None
    lead = "" if text.endswith(" ") else " "
    return lead + format_value(value, dollars)


def continues_number(piece: bytes) -> bool:
    """Whether a token's bytes, right after a number, would make it a longer number."""
    return bool(re.match(rb"[0-9]|[.,][0-9]", piece))
