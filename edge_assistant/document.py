"""Parsing JSON and TOML that came from outside (manifests, settings, request bodies).

The standard parsers recurse once per level of nesting, so ``[[[[...]]]]`` a few
thousand deep raises ``RecursionError``, which no caller expects. Here that, and
any nesting deeper than ``MAX_DEPTH`` (which later code walking the data could
trip over), becomes the parser's own error type, so the callers' existing
``except json.JSONDecodeError`` / ``except tomllib.TOMLDecodeError`` turn it into
one line with a hint like any other syntax error.
"""

from __future__ import annotations

import json
import tomllib
from typing import Any

# Far deeper than any manifest, settings file or API request has a reason to be.
MAX_DEPTH = 64


def loads_json(text: str | bytes) -> Any:
    """``json.loads``, refusing nesting deeper than ``MAX_DEPTH`` with a ``JSONDecodeError``."""
    doc = text if isinstance(text, str) else text.decode("utf-8")
    try:
        value = json.loads(doc)
    except RecursionError:
        raise json.JSONDecodeError(f"nested more than {MAX_DEPTH} levels deep", doc, 0) from None
    if _too_deep(value):
        raise json.JSONDecodeError(f"nested more than {MAX_DEPTH} levels deep", doc, 0)
    return value


def loads_toml(text: str) -> dict[str, Any]:
    """``tomllib.loads``, refusing nesting deeper than ``MAX_DEPTH`` with a ``TOMLDecodeError``."""
    try:
        value = tomllib.loads(text)
    except RecursionError:
        raise tomllib.TOMLDecodeError(f"nested more than {MAX_DEPTH} levels deep") from None
    if _too_deep(value):
        raise tomllib.TOMLDecodeError(f"nested more than {MAX_DEPTH} levels deep")
    return value


def _too_deep(value: Any) -> bool:
    """Whether lists/dicts nest deeper than ``MAX_DEPTH`` (iterative: no recursion of its own)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth >= MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
