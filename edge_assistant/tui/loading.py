"""Loading the assistant in the background for ``edge-assistant chat``.

Wraps :func:`edge_assistant.runtime.factory.open_assistant` so that its byte
counts (first-run unpack) become a fraction on the app's progress bar, and its
notices (such as "using the embedded demo model") become notifications instead
of text on stderr, which would tear the full-screen UI.
"""

from __future__ import annotations

from ..runtime.assistant import Assistant
from ..settings import Settings
from .app import AssistantLoader, LoadReport


def assistant_loader(settings: Settings, bundle: str | None) -> AssistantLoader:
    def load(report: LoadReport) -> Assistant:
        from ..runtime.factory import open_assistant, resolve_bundle

        resolved = resolve_bundle(bundle, settings)
        total = resolved.manifest.base.size if resolved.manifest is not None else 0
        done = 0

        def unpacked(n_bytes: int) -> None:
            nonlocal done
            done += n_bytes
            if total and done >= total:
                report.stage(f"Loading {resolved.name}…", None)
            else:
                report.stage(f"Unpacking {resolved.name} (first run only)", done / total if total else None)

        report.stage(f"Loading {resolved.name}…", None)
        return open_assistant(settings, bundle, progress=unpacked, notify=report.notice)

    return load

