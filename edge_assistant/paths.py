"""Where edge-assistant keeps its files.

Everything lives under the platform's user directories, or under one folder
when ``EDGE_ASSISTANT_HOME`` is set (tests set it so they never touch the real
home)::

    $EDGE_ASSISTANT_HOME/
      config/settings.toml
      data/bundles/<name>/      installed bundles (``pull``)
      data/history.sqlite3      chat history
      cache/bases/<sha256>.gguf unpacked base models
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "edge-assistant"
HOME_ENV = "EDGE_ASSISTANT_HOME"


def _home() -> Path | None:
    value = os.environ.get(HOME_ENV)
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    home = _home()
    return home / "config" if home else Path(platformdirs.user_config_dir(APP_NAME))


def data_dir() -> Path:
    home = _home()
    return home / "data" if home else Path(platformdirs.user_data_dir(APP_NAME))


def cache_dir() -> Path:
    home = _home()
    return home / "cache" if home else Path(platformdirs.user_cache_dir(APP_NAME))


def settings_file() -> Path:
    return config_dir() / "settings.toml"


def bundles_dir() -> Path:
    """Installed bundles, one folder each (what ``pull`` writes)."""
    return data_dir() / "bundles"


def bases_cache_dir() -> Path:
    """Unpacked base GGUFs, named by their sha256."""
    return cache_dir() / "bases"


def history_db() -> Path:
    return data_dir() / "history.sqlite3"


def all_paths() -> dict[str, Path]:
    """The named locations, for ``edge-assistant paths`` and ``doctor``."""
    return {
        "config": config_dir(),
        "settings": settings_file(),
        "data": data_dir(),
        "bundles": bundles_dir(),
        "history": history_db(),
        "cache": cache_dir(),
        "bases": bases_cache_dir(),
    }
