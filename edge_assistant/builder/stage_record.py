"""Stage records: the record.json each stage writes last (config, input hashes, outputs, versions).

Each stage writes into ``<out>/<stage>/`` and, last of all, ``record.json``:
the stage's config, the sha256 of every input file, tool versions, timings and
its outputs. A stage is finished when its record exists and its fingerprint
(config + input hashes) matches; a rerun skips it. A stage killed midway has no
record, so the next run starts it again (training stages resume from their own
checkpoints inside the stage folder).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RECORD_NAME = "record.json"
_TOOLS = ("edge-assistant", "torch", "transformers", "peft", "accelerate", "gguf", "llama-cpp-python", "zstandard")


def atomic_write_text(path: Path, text: str) -> Path:
    """Write through a temp file in the same folder, fsync, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def tool_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _TOOLS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """sha256 of a file or of a folder's files (sorted by relative name), cached per (path, size, mtime)."""
    path = Path(path)
    if path.is_dir():
        digest = hashlib.sha256()
        for f in sorted(p for p in path.rglob("*") if p.is_file() and p.name != RECORD_NAME
                        and not p.name.startswith(".") and "__pycache__" not in p.parts):
            digest.update(f"{f.relative_to(path).as_posix()}\0{file_sha256(f)}\0".encode())
        return digest.hexdigest()
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASH_CACHE:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(4 << 20):
                digest.update(chunk)
        _HASH_CACHE[key] = digest.hexdigest()
    return _HASH_CACHE[key]


def fingerprint(config: Any, input_hashes: dict[str, str]) -> str:
    blob = json.dumps({"config": config, "inputs": input_hashes}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class StageRun:
    """One stage's folder, inputs and record; ``finish()`` writes the record last."""

    name: str
    dir: Path
    config: Any
    inputs: dict[str, Path]
    writes: dict[str, Path] = field(default_factory=dict)  # declared outputs: where the runner writes them
    started: float = field(default_factory=time.time)
    metrics: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def record_path(self) -> Path:
        return self.dir / RECORD_NAME

    def input_hashes(self) -> dict[str, str]:
        return {key: file_sha256(p) for key, p in sorted(self.inputs.items())}

    def previous(self) -> dict[str, Any] | None:
        """The record of an earlier finished run with the same config and inputs, if any."""
        if not self.record_path.is_file():
            return None
        try:
            record = json.loads(self.record_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return None
        if record.get("fingerprint") != fingerprint(self.config, self.input_hashes()):
            return None
        if not all((self.dir / rel).exists() for rel in record.get("outputs", {}).values()):
            return None
        return record

    def invalidate(self) -> None:
        """Forget an earlier result before the stage starts again."""
        self.record_path.unlink(missing_ok=True)

    def output(self, key: str, path: Path) -> Path:
        self.outputs[key] = Path(path).relative_to(self.dir).as_posix()
        return path

    def finish(self) -> dict[str, Any]:
        hashes = self.input_hashes()
        record = {
            "stage": self.name,
            "fingerprint": fingerprint(self.config, hashes),
            "config": self.config,
            "inputs": {key: {"path": str(self.inputs[key]), "sha256": h} for key, h in hashes.items()},
            "outputs": self.outputs,
            "metrics": self.metrics,
            "tool_versions": tool_versions(),
            "argv": sys.argv,
            "started": self.started,
            "finished": time.time(),
            "seconds": round(time.time() - self.started, 3),
        }
        atomic_write_text(self.record_path, json.dumps(record, indent=2, default=str) + "\n")
        return record
