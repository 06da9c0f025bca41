"""Loading the assistant in the background for ``edge-assistant chat``.

Wraps :func:`edge_assistant.runtime.factory.open_assistant` so that its
first-run unpack progress (byte counts) becomes a fraction on the app's
progress bar, and its notices (such as "using the embedded demo model") become
notifications instead of text on stderr, which would tear the full-screen UI.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from ..runtime.assistant import Assistant
from ..runtime.assistant_handle import AssistantHandle, LoadReport
from ..runtime.factory import UnpackProgress
from ..settings import Settings


def _unpack_progress(report: LoadReport) -> UnpackProgress:
    """Unpack progress (see ``open_assistant``) reported to the app's progress bar."""

    @contextmanager
    def progress(total: int) -> Iterator[Callable[[int], None]]:
        done = 0
        stage = "Unpacking the base model (first run only)"
        report.stage(stage, 0.0)

        def advance(n_bytes: int) -> None:
            nonlocal done
            done += n_bytes
            report.stage(stage, done / total if total else None)

        yield advance
        report.stage("Loading the model…", None)

    return progress


def assistant_loader(settings: Settings) -> AssistantHandle:
    """A handle on the assistant that the app loads in the background, once its prompt is drawn."""
    def load(report: LoadReport) -> Assistant:
        from ..runtime.factory import open_assistant

        return open_assistant(settings, progress=_unpack_progress(report), notify=report.notice)

    return AssistantHandle.loading(load)
