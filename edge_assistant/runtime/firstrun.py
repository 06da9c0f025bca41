"""Things said once per installation (the welcome, the demo-model notice): a marker file each.

The markers live in the data folder (``edge-assistant paths``), so a new
``EDGE_ASSISTANT_HOME`` starts a first run again. A read-only data folder simply
means the message shows again next time; it is never an error.
"""

from __future__ import annotations

from .. import paths

WELCOME = "welcome"
DEMO_NOTICE = "demo-notice"


def _marker(what: str):
    return paths.data_dir() / f".{what}-shown"


def first_time(what: str) -> bool:
    """True the first time this is asked for ``what`` (and records it), then False."""
    marker = _marker(what)
    if marker.exists():
        return False
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        pass  # read-only data dir: shown again next time
    return True
