"""`edge-assistant doctor`: what is installed, where things live, what would be used."""

from __future__ import annotations

import platform
import shutil
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Literal

from . import __version__, paths
from .errors import EdgeAssistantError
from .printable import printable

Status = Literal["ok", "warn", "fail"]


@dataclass
class Check:
    name: str
    status: Status
    detail: str


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, status: Status, detail: str) -> None:
        self.checks.append(Check(name, status, detail))

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)

    def to_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "checks": [c.__dict__ for c in self.checks]}

    def to_text(self) -> str:
        width = max(len(c.name) for c in self.checks)
        marks = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}
        # Details quote bundle names, paths and errors, which come from outside: no control characters.
        lines = [f"{marks[c.status]}  {c.name:<{width}}  {printable(c.detail)}" for c in self.checks]
        lines.append("all good" if self.ok else "problems found: see the FAIL lines above")
        return "\n".join(lines)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _free_bytes(path: Path) -> int:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def run_checks() -> Report:
    report = Report()
    report.add("edge-assistant", "ok", __version__)
    report.add("python", "ok", f"{platform.python_version()} on {platform.system()} {platform.machine()}")

    llama_version = _version("llama-cpp-python")
    if llama_version is None:
        report.add("llama-cpp-python", "fail", "not installed: reinstall edge-assistant")
    else:
        try:
            import llama_cpp

            features = llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip()
            report.add("llama-cpp-python", "ok", f"{llama_version}; {features}")
        except (ImportError, OSError) as exc:
            report.add("llama-cpp-python", "fail", f"{llama_version} does not load ({exc}): reinstall it")

    from .threads import busy_cpus, choose_threads, physical_cores, usable_cpus
    from .settings import load_settings

    try:
        settings = load_settings()
        report.add("settings", "ok", f"{paths.settings_file()}" + ("" if paths.settings_file().exists()
                                                                   else " (not present: defaults)"))
    except EdgeAssistantError as exc:
        settings = None
        report.add("settings", "fail", str(exc))
    requested = settings.threads if settings else 0
    report.add("threads", "ok",
               f"{choose_threads(requested)} for decoding ({'set in settings' if requested else 'automatic'}; "
               f"{usable_cpus()} usable CPUs, {physical_cores()} physical cores, ~{busy_cpus()} busy now)")

    if llama_version is not None:
        try:
            from .runtime.llama_load import choose_weight_repack

            choice = choose_weight_repack(settings.weight_repack if settings else "auto")
            report.add("weight repack", "ok", choice.describe())
        except (ImportError, OSError, EdgeAssistantError) as exc:
            report.add("weight repack", "warn", f"could not ask llama.cpp's CPU backend ({exc})")

    for name, location in (("data dir", paths.data_dir()), ("cache dir", paths.cache_dir())):
        free = _free_bytes(location)
        status: Status = "ok" if free > 2 << 30 else "warn"
        report.add(name, status, f"{location} ({free / 2**30:.1f} GiB free)")

    from .runtime.factory import embedded_demo_gguf, resolve_bundle

    try:
        from .bundle.discovery import installed_bundles

        installed = installed_bundles()
        names = ", ".join(m.name for _, m in installed) or "none"
        report.add("bundles", "ok", f"{len(installed)} installed in {paths.bundles_dir()}: {names}")
    except EdgeAssistantError as exc:
        report.add("bundles", "warn", str(exc))
    demo = embedded_demo_gguf()
    report.add("embedded demo", "ok" if demo else "warn",
               str(demo) if demo else "not installed (pipx install 'edge-assistant[demo]')")
    if settings is not None:
        try:
            resolved = resolve_bundle(settings)
            where = resolved.path or resolved.demo_gguf
            report.add("would use", "ok", f"{resolved.name} ({resolved.source}: {where})")
        except EdgeAssistantError as exc:
            report.add("would use", "fail", str(exc))
    report.add("interpreter", "ok", sys.executable)
    return report
