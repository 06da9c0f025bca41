"""Modifier names: who may answer (auto, the base alone, a modifier), their spellings, and the checks on a name.

A *choice* is what a user asks for: ``auto`` (the router decides), ``base`` (the
base model alone) or a modifier's name. ``none`` is an older spelling of ``base``,
accepted wherever a choice is typed (``--modifier``, settings, the API's ``model``
and ``modifier`` fields, ``/use``). Once decided, who answers is a modifier name,
or ``None`` for the base alone (``RouteDecision.modifier``, ``GenerationResult.modifier``,
the engine's ``modifier`` argument); :func:`shown` names that to the user.
"""

from __future__ import annotations

import re
from typing import Collection, Sequence

from .errors import ModifierError

AUTO = "auto"                 # the router decides who answers
BASE = "base"                 # the base model alone answers: the one spelling shown to users
BASE_ALIASES = ("none",)      # older spellings of BASE, still accepted
# The base's route label inside router files (router.json, keyword tables, seed examples): their format.
ROUTER_BASE_ROUTE = "none"
# Names a modifier may not have: they mean something else wherever a choice is typed.
RESERVED = frozenset({AUTO, BASE, *BASE_ALIASES})
# A modifier's name (match with ``fullmatch``: ``match`` with ``$`` also accepts a final newline).
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
NAME_RULE = "use lowercase letters, digits, '-', '_' or '.', and not auto, base or none"


def is_valid_name(name: str) -> bool:
    """Whether a bundle's modifier may be called ``name``."""
    return bool(NAME_RE.fullmatch(name)) and name not in RESERVED


def canonical(choice: str) -> str:
    """``choice`` spelled the one way: ``base`` for its aliases, lowercase, no surrounding spaces."""
    name = choice.strip().lower()
    return BASE if name in BASE_ALIASES else name


def unknown_modifier(name: str, modifiers: Sequence[str]) -> ModifierError:
    """The one-line error for a modifier this bundle lacks, naming the ones it has."""
    if modifiers:
        return ModifierError(f"unknown modifier '{name}'", hint=f"choose auto, base or one of: {', '.join(modifiers)}")
    return ModifierError(f"unknown modifier '{name}': this bundle has no modifiers", hint="choose auto or base")


def require_modifier(name: str, modifiers: Collection[str]) -> str:
    """``name`` if it is one of ``modifiers``; else :func:`unknown_modifier`."""
    if name not in modifiers:
        raise unknown_modifier(name, list(modifiers))
    return name


def is_choice(choice: str, modifiers: Collection[str]) -> bool:
    """Whether ``choice`` (any accepted spelling) is auto, the base or one of ``modifiers``."""
    name = canonical(choice)
    return name in (AUTO, BASE) or name in modifiers


def choose(choice: str, modifiers: Collection[str]) -> str:
    """``choice`` as ``auto``, ``base`` or one of ``modifiers``; else :func:`unknown_modifier`."""
    name = canonical(choice)
    return name if name in (AUTO, BASE) else require_modifier(name, modifiers)


def shown(modifier: str | None) -> str:
    """How a decided answerer is named to the user: the modifier's name, or ``base``."""
    return BASE if modifier is None else modifier
