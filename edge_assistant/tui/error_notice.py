"""An ``EdgeAssistantError`` raised by a UI handler becomes one notification, never a crash."""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Protocol, TypeVar

from ..errors import EdgeAssistantError

F = TypeVar("F", bound=Callable[..., Any])


class Notifies(Protocol):
    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = True) -> None: ...


def surfaces_errors(method: F) -> F:
    """Show an ``EdgeAssistantError`` from a handler as a notification instead of crashing."""
    if inspect.iscoroutinefunction(method):
        @functools.wraps(method)
        async def async_wrapper(self: Notifies, *args: Any, **kwargs: Any) -> Any:
            try:
                return await method(self, *args, **kwargs)
            except EdgeAssistantError as exc:
                self.notify(str(exc), severity="error", title="edge-assistant", markup=False)
        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(method)
    def wrapper(self: Notifies, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except EdgeAssistantError as exc:
            self.notify(str(exc), severity="error", title="edge-assistant", markup=False)
    return wrapper  # type: ignore[return-value]
