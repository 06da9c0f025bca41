"""A handle on the assistant that may still be loading: `ready`, `wait()`, and the assistant once loaded.

The chat app is usable before the model is: it always holds one of these, built
either around an assistant that is ready (tests) or around a loader that runs
on a background thread (the CLI). A turn started meanwhile waits for it.
"""

from __future__ import annotations

import threading
from typing import Callable, Protocol

from ..errors import EdgeAssistantError, ModelError
from .assistant import Assistant


class LoadReport(Protocol):
    """How a loader tells the app what it is doing (called on the loading thread)."""

    def stage(self, text: str, fraction: float | None = None) -> None:
        """What loading does now, and how far (0..1; None when unknown)."""

    def notice(self, text: str) -> None:
        """Something the user should read once, shown as a notification."""


AssistantLoader = Callable[[LoadReport], Assistant]


class AssistantHandle:
    """The assistant, now or once its loader has run; thread-safe.

    Build it with :meth:`loaded` or :meth:`loading`. A handle that loaded the
    assistant itself owns it (:meth:`close` frees it); one given a ready
    assistant leaves closing to whoever made it.
    """

    def __init__(self, assistant: Assistant | None, loader: AssistantLoader | None) -> None:
        self._assistant = assistant
        self._loader = loader
        self._error: str | None = None
        self._settled = threading.Event()   # loaded or failed: waiting is over
        if assistant is not None:
            self._settled.set()

    @classmethod
    def loaded(cls, assistant: Assistant) -> "AssistantHandle":
        return cls(assistant, None)

    @classmethod
    def loading(cls, loader: AssistantLoader) -> "AssistantHandle":
        return cls(None, loader)

    @property
    def ready(self) -> bool:
        """The assistant is loaded (False while loading and after a failed load)."""
        return self._assistant is not None

    @property
    def assistant(self) -> Assistant | None:
        return self._assistant

    @property
    def needs_loading(self) -> bool:
        """A loader is waiting for :meth:`load` to be called."""
        return self._loader is not None and not self._settled.is_set()

    @property
    def modifiers(self) -> tuple[str, ...] | None:
        """The bundle's modifiers, or None while the model is loading."""
        return tuple(self._assistant.engine.modifier_names) if self._assistant is not None else None

    def load(self, report: LoadReport) -> Assistant:
        """Run the loader on this thread (the caller's background thread). A failure is kept, so
        that :meth:`wait` names it, and raised: an ``EdgeAssistantError`` as it is, anything
        else (a bug) after it was recorded as unexpected."""
        assert self._loader is not None and not self._settled.is_set(), "load() runs once, on a loader"
        try:
            assistant = self._loader(report)
        except EdgeAssistantError as exc:
            self._fail(str(exc))
            raise
        except Exception as exc:
            self._fail(f"unexpected error while loading: {exc!r} (please report it)")
            raise
        self._assistant = assistant
        self._settled.set()
        return assistant

    @property
    def error(self) -> str | None:
        """Why loading failed, once it has."""
        return self._error

    def _fail(self, error: str) -> None:
        self._error = error
        self._settled.set()

    def wait(self, stop: threading.Event | None = None) -> Assistant | None:
        """For worker threads: the assistant once loaded (None if ``stop`` is set first);
        a ModelError if loading failed."""
        while not self._settled.wait(0.1):
            if stop is not None and stop.is_set():
                return None
        if self._assistant is None:
            raise ModelError(f"there is no model to answer: {self._error}",
                             hint="fix the problem above and restart `edge-assistant chat`")
        return self._assistant

    def close(self) -> None:
        """Free the assistant if this handle loaded it (idempotent)."""
        assistant = self._assistant
        if self._loader is not None and assistant is not None:
            self._loader = None
            assistant.close()
