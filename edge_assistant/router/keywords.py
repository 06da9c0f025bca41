"""Keyword rules: a weighted table of patterns per route, and the scorer that applies them.

A rule is a regular expression, written in lowercase and matched against the
lowercased message (cheaper than case-insensitive matching), with a weight: positive weights are evidence for the route, negative ones against
it. Each rule counts once per message however often it matches, so a long paste
of one word cannot outvote everything else. The scores become features of the
calibrated model (see :mod:`.calibration`); they are not a decision on their own.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..errors import RouterError


# An uppercase letter that is not an escape such as \\D, \\S, \\W or \\B.
_UPPERCASE_LITERAL = re.compile(r"(?<!\\)[A-Z]")


@dataclass(frozen=True)
class KeywordRule:
    pattern: str     # regular expression in lowercase, matched against the lowercased message
    weight: float    # evidence for (positive) or against (negative) the route
    note: str = ""   # why this rule exists; kept in keywords.json for the reader

    def to_dict(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "weight": self.weight, "note": self.note}


@dataclass(frozen=True)
class KeywordHit:
    route: str
    label: str       # what matched, as the user wrote it (for `reason`)
    weight: float


def squash(score: float) -> float:
    """Signed log: 1 keyword vs 2 matters more than 7 vs 8, and pasted text cannot explode a feature."""
    return math.copysign(math.log1p(abs(score)), score)


class KeywordScorer:
    """Compiled rules for every route; ``score`` returns one number per route plus the hits."""

    def __init__(self, rules: Mapping[str, Sequence[KeywordRule]]) -> None:
        self.rules = {route: tuple(rows) for route, rows in rules.items()}
        self._compiled: list[tuple[str, re.Pattern[str], float]] = []
        for route, rows in self.rules.items():
            for rule in rows:
                if _UPPERCASE_LITERAL.search(rule.pattern):
                    raise RouterError(f"keyword rule {rule.pattern!r} for '{route}' has uppercase letters",
                                      hint="write keyword patterns in lowercase: messages are lowercased first")
                try:
                    compiled = re.compile(rule.pattern)
                except re.error as exc:
                    raise RouterError(f"keyword rule {rule.pattern!r} for '{route}' is not a valid regex ({exc})",
                                      hint="fix the recipe's keyword table and rebuild the router") from exc
                self._compiled.append((route, compiled, float(rule.weight)))

    def score(self, text: str, routes: Sequence[str]) -> tuple[list[float], list[KeywordHit]]:
        text = text.lower()
        totals = dict.fromkeys(routes, 0.0)
        hits: list[KeywordHit] = []
        for route, compiled, weight in self._compiled:
            if route not in totals:
                continue
            match = compiled.search(text)
            if match is not None:
                totals[route] += weight
                hits.append(KeywordHit(route, match.group(0).strip().lower()[:40], weight))
        return [totals[r] for r in routes], hits

    def to_dict(self) -> dict[str, list[dict[str, Any]]]:
        return {route: [rule.to_dict() for rule in rows] for route, rows in self.rules.items()}

    @classmethod
    def from_dict(cls, data: Any) -> "KeywordScorer":
        if not isinstance(data, dict):
            raise RouterError("keywords.json must map each route to a list of rules",
                              hint="rebuild the router with `edge-assistant build`")
        rules: dict[str, list[KeywordRule]] = {}
        for route, rows in data.items():
            if not isinstance(rows, list):
                raise RouterError(f"keywords.json: rules for '{route}' must be a list",
                                  hint="rebuild the router with `edge-assistant build`")
            parsed = []
            for row in rows:
                if (not isinstance(row, dict) or not isinstance(row.get("pattern"), str)
                        or isinstance(row.get("weight"), bool) or not isinstance(row.get("weight"), (int, float))):
                    raise RouterError(f"keywords.json: a rule for '{route}' needs a 'pattern' string and a "
                                      "numeric 'weight'", hint="rebuild the router with `edge-assistant build`")
                parsed.append(KeywordRule(row["pattern"], float(row["weight"]), str(row.get("note", ""))))
            rules[str(route)] = parsed
        return cls(rules)


def rules_from_recipe(table: Mapping[str, Any]) -> dict[str, list[KeywordRule]]:
    """Accept rules as KeywordRule, (pattern, weight[, note]) tuples or {pattern, weight, note} dicts.

    Recipes (TOML) naturally give lists of tables or of two-element arrays;
    this normalises them so ``fit_router`` takes any of these forms.
    """
    out: dict[str, list[KeywordRule]] = {}
    for route, rows in table.items():
        parsed = []
        for row in rows:
            if isinstance(row, KeywordRule):
                parsed.append(row)
            elif isinstance(row, Mapping):
                parsed.append(KeywordRule(str(row["pattern"]), float(row["weight"]), str(row.get("note", ""))))
            elif isinstance(row, (list, tuple)) and len(row) in (2, 3):
                parsed.append(KeywordRule(str(row[0]), float(row[1]), str(row[2]) if len(row) == 3 else ""))
            else:
                raise RouterError(f"keyword rule {row!r} for '{route}' is not (pattern, weight[, note])",
                                  hint="write each rule as {pattern = '...', weight = 1.0} in the recipe")
        out[str(route)] = parsed
    KeywordScorer(out)  # compile once now so a bad regex fails at fit time, not on a user's laptop
    return out
