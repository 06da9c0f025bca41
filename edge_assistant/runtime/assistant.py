"""The assistant: an engine plus a router, deciding per message which modifier answers.

Shared by ``ask``, the chat app and ``serve`` so that they route the same way.
A user override (``base`` or a modifier name; see ``modifier_names``) always wins over the router.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol, Sequence

from ..modifier_names import AUTO, BASE, choose
from ..router.decision import BaseOnly, RouteDecision
from .generation import EngineProtocol, Generation, Message
from ..sampling import SamplingParams


class RouterProtocol(Protocol):
    def route(self, prompt: str, *, previous: str | None = None) -> RouteDecision: ...


@dataclass
class Assistant:
    engine: EngineProtocol
    router: RouterProtocol | None = None
    bundle_name: str = ""

    def __post_init__(self) -> None:
        if self.router is None:  # no router: every message goes to the base, and the reason says why
            what = "router" if self.engine.modifier_names else "modifiers"
            self.router = BaseOnly(f"no {what} in this bundle: the base answers")

    def route(self, prompt: str, override: str = AUTO, previous: str | None = None) -> RouteDecision:
        """Which modifier answers ``prompt``: the override if given (any accepted spelling), else the router."""
        started = time.perf_counter()
        choice = choose(override, self.engine.modifier_names)
        if choice == BASE:
            return RouteDecision(None, None, "user chose the base alone",
                                 (time.perf_counter() - started) * 1000)
        if choice != AUTO:
            return RouteDecision(choice, None, f"user chose '{choice}'",
                                 (time.perf_counter() - started) * 1000)
        assert self.router is not None
        decision = self.router.route(prompt, previous=previous)
        if decision.modifier is not None and decision.modifier not in self.engine.modifier_names:
            return RouteDecision(None, decision.confidence,
                                 f"{decision.reason}; modifier '{decision.modifier}' is not available, "
                                 "so the base answers", decision.latency_ms)
        return decision

    def reply(self, messages: Sequence[Message], *, override: str = AUTO, previous: str | None = None,
              sampling: SamplingParams = SamplingParams()) -> tuple[RouteDecision, Generation]:
        """Route on the last user message, then start generating (lazily) with that modifier."""
        last_user = next((m.content for m in reversed(messages) if m.role == "user"), "")
        decision = self.route(last_user, override, previous)
        return decision, self.engine.generate(messages, modifier=decision.modifier, sampling=sampling)

    def close(self) -> None:
        self.engine.close()
