"""The per-tensor type plan: fits the budget, and no single-type choice that fits does better."""

from __future__ import annotations

import itertools
import random

import pytest

from edge_assistant.builder.size_plan import Group, choose_plan
from edge_assistant.errors import UsageError

TYPES = {"Q3_K": 110, "IQ4_NL": 144, "Q5_0": 176, "Q6_K": 210, "Q8_0": 272}  # bytes per 256 weights


def _groups(seed: int, n: int = 6) -> list[Group]:
    rng = random.Random(seed)
    groups = []
    for i in range(n):
        rows = rng.choice((64, 128, 512))
        sens = rng.uniform(0.01, 1.0)  # how much this group cares
        g = Group(f"blk.{i}.g", [f"blk.{i}.w"], [f"m{i}"], [(rows, 256)])
        for t, b in TYPES.items():
            g.options[t] = rows * b
            g.kl[t] = sens * 2.0 ** (-(b - 110) / 25) * rng.uniform(0.9, 1.1)  # fewer bits, more KL
        groups.append(g)
    return groups


def _cost(groups: list[Group], choice: dict[str, str]) -> tuple[int, float]:
    return (sum(g.options[choice[g.name]] for g in groups), sum(g.kl[choice[g.name]] for g in groups))


@pytest.mark.parametrize("seed", range(8))
def test_plan_fits_and_is_near_the_exhaustive_optimum(seed: int) -> None:
    groups = _groups(seed)
    smallest, largest = _cost(groups, {g.name: "Q3_K" for g in groups})[0], _cost(groups, {g.name: "Q8_0" for g in groups})[0]
    budget = smallest + (largest - smallest) * (seed + 1) // 10
    plan = choose_plan(groups, budget)
    size, kl = _cost(groups, plan.chosen)
    assert size <= budget and size == plan.planned_bytes
    best = min(k for s, k in (_cost(groups, dict(zip([g.name for g in groups], combo)))
                              for combo in itertools.product(TYPES, repeat=len(groups))) if s <= budget)
    uniform = [k for s, k in (_cost(groups, {g.name: t for g in groups}) for t in TYPES) if s <= budget]
    assert kl <= min(uniform) + 1e-12  # never worse than one type for the whole model
    assert kl <= best * 1.25  # and close to the best mixed choice


def test_a_budget_below_the_smallest_types_names_the_sizes() -> None:
    groups = _groups(0)
    with pytest.raises(UsageError, match="smallest types need"):
        choose_plan(groups, 10)
