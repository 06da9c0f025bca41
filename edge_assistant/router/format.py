"""The router folder's format: its file names and router.json (versioned), read once and written once.

A router folder (``<bundle>/router/``)::

    router.json        routes, threshold, calibration, stickiness, limits (:class:`RouterConfig`)
    keywords.json      the weighted keyword table per route (:mod:`.keywords`)
    prototypes.npy     float16 [N, dim]: embedded training prompts, grouped by route
    embedding/         the static embedding model (see :mod:`.embedding`)
    fit_report.json    accuracy, calibration error and confusion on the validation split

``router.json`` arrives with a downloaded bundle, so :meth:`RouterConfig.load`
treats it as untrusted: every field is checked for its type and range, and a bad
file is one :class:`RouterError` line that names the field, never a traceback.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..document import loads_json
from ..errors import RouterError
from ..modifier_names import ROUTER_BASE_ROUTE

ROUTER_FILE = "router.json"
KEYWORDS_FILE = "keywords.json"
PROTOTYPES_FILE = "prototypes.npy"
FIT_REPORT_FILE = "fit_report.json"
FORMAT_VERSION = 1
NONE_ROUTE = ROUTER_BASE_ROUTE   # the base alone, as router files spell it

# Characters of a message that are scanned and embedded: what a message is
# about shows in its first lines, and the latency budget (p99 <= 5 ms) must hold
# for a pasted megabyte. 1,000 characters cost about 1.5 ms (tokenizer + rules).
DEFAULT_MAX_CHARS = 1000
# Added to the previous route's logit for a follow-up (log-odds).
DEFAULT_STICKINESS_BONUS = 2.0

_REBUILD = "rebuild the router with this version of edge-assistant (`edge-assistant build`)"


@dataclass(frozen=True)
class RouterConfig:
    """What ``router.json`` holds. ``routes[0]`` is always "none" (the base alone);
    ``prototype_routes[i]`` is the route index of row ``i`` of prototypes.npy."""

    routes: tuple[str, ...]
    threshold: float
    k: int
    calibrators: dict[str, dict[str, Any]]    # feature set -> Calibrator.to_dict()
    prototype_routes: tuple[int, ...]
    max_chars: int = DEFAULT_MAX_CHARS
    stickiness_bonus: float = DEFAULT_STICKINESS_BONUS

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "routes": list(self.routes),
            "threshold": self.threshold,
            "k": self.k,
            "max_chars": self.max_chars,
            "stickiness": {"bonus": self.stickiness_bonus},
            "calibrators": self.calibrators,
            "prototype_routes": list(self.prototype_routes),
        }

    def save(self, router_dir: str | Path) -> Path:
        """Write ``router_dir/router.json`` (fsynced); the caller makes the folder appear whole."""
        path = Path(router_dir) / ROUTER_FILE
        _check(self, path)
        with open(path, "w", encoding="utf-8") as f:
            f.write(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return path

    @classmethod
    def load(cls, router_dir: str | Path) -> "RouterConfig":
        """Read and check ``router_dir/router.json``; raise RouterError (one line) if it is absent or bad."""
        path = Path(router_dir) / ROUTER_FILE
        try:
            return cls.from_dict(loads_json(path.read_bytes()), path)
        except FileNotFoundError:
            raise RouterError(f"{router_dir} has no {ROUTER_FILE}", hint="build the router with "
                              "`edge-assistant build` or pass a bundle that has one") from None
        except (OSError, ValueError) as exc:   # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise RouterError(f"cannot read the router in {router_dir} ({_one_line(exc)})",
                              hint="re-download the bundle or rebuild the router") from exc

    @classmethod
    def from_dict(cls, data: Any, path: Path | str = ROUTER_FILE) -> "RouterConfig":
        if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
            raise RouterError(f"{path} is not a version-{FORMAT_VERSION} router", hint=_REBUILD)
        routes = _field(data, "routes", list, path)
        if not all(isinstance(r, str) and r for r in routes):
            raise _bad(path, "routes", "must be a list of non-empty names")
        calibrators = _field(data, "calibrators", dict, path)
        if not calibrators or not all(isinstance(v, dict) for v in calibrators.values()):
            raise _bad(path, "calibrators", "must map each feature set to a calibration")
        prototype_routes = _field(data, "prototype_routes", list, path)
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in prototype_routes):
            raise _bad(path, "prototype_routes", "must be a list of route indices")
        stickiness = data.get("stickiness", {})
        if not isinstance(stickiness, dict):
            raise _bad(path, "stickiness", "must be an object")
        config = cls(routes=tuple(routes), threshold=_number(data, "threshold", path), k=_field(data, "k", int, path),
                     calibrators=calibrators, prototype_routes=tuple(prototype_routes),
                     max_chars=_field(data, "max_chars", int, path, DEFAULT_MAX_CHARS),
                     stickiness_bonus=_number(stickiness, "bonus", path, DEFAULT_STICKINESS_BONUS, "stickiness.bonus"))
        _check(config, path)
        return config


def _check(config: RouterConfig, path: Path | str) -> None:
    """The checks that span fields (shared by load and save, so nothing is written that cannot be read)."""
    routes = config.routes
    if not routes or routes[0] != NONE_ROUTE:
        raise _bad(path, "routes", f"must start with '{NONE_ROUTE}' (the base)")
    if len(set(routes)) != len(routes):
        raise _bad(path, "routes", "name a route twice")
    if not 0.0 <= config.threshold <= 1.0:
        raise _bad(path, "threshold", f"is {config.threshold}, not between 0 and 1")
    if config.k < 1:
        raise _bad(path, "k", f"is {config.k}, not at least 1")
    if config.max_chars < 1:
        raise _bad(path, "max_chars", f"is {config.max_chars}, not at least 1")
    if any(not 0 <= i < len(routes) for i in config.prototype_routes):
        raise _bad(path, "prototype_routes", f"has an index outside the {len(routes)} routes")


def _field(data: dict[str, Any], key: str, kind: type, path: Path | str, default: Any = ...) -> Any:
    if key not in data:
        if default is ...:
            raise RouterError(f"{path} has no field '{key}'", hint=_REBUILD)
        return default
    value = data[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _bad(path, key, f"must be {_KIND_NAMES[kind]}, not {type(value).__name__}")
    return value


def _number(data: dict[str, Any], key: str, path: Path | str, default: Any = ..., name: str | None = None) -> float:
    name = name or key
    if key not in data:
        if default is ...:
            raise RouterError(f"{path} has no field '{name}'", hint=_REBUILD)
        return float(default)
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(path, name, f"must be a number, not {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:   # an integer of hundreds of digits
        number = math.inf
    if not math.isfinite(number):
        raise _bad(path, name, "must be a finite number")
    return number


_KIND_NAMES = {list: "a list", dict: "an object", int: "an integer"}


def _bad(path: Path | str, key: str, what: str) -> RouterError:
    return RouterError(f"{path}: '{key}' {what}", hint=_REBUILD)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]
