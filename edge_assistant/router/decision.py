"""The router's answer for one message."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class RouteDecision:
    modifier: str | None      # None: the base alone answers
    # Calibrated probability of the chosen class, 0..1; None where nothing was decided (a user
    # override, or no router): showing "100% sure" there would claim a certainty no one measured.
    confidence: float | None
    reason: str               # human-readable: the keywords and similarities that decided
    latency_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BaseOnly:
    """Stands in for a router where a bundle has none: the base answers, and the reason says why."""

    reason: str

    def route(self, prompt: str, *, previous: str | None = None) -> RouteDecision:
        return RouteDecision(None, None, self.reason, 0.0)
