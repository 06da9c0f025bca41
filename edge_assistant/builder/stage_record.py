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
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..durable import write_text
from ..hashing import sha256_file

RECORD_NAME = "record.json"
_TOOLS = ("edge-assistant", "torch", "transformers", "peft", "accelerate", "gguf", "llama-cpp-python", "zstandard")


def tool_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _TOOLS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def _input_sha256(path: Path) -> str:
    """sha256 of an input file, or of a folder's files (sorted by relative name)."""
    path = Path(path)
    if path.is_dir():
        digest = hashlib.sha256()
        for f in sorted(p for p in path.rglob("*") if p.is_file() and p.name != RECORD_NAME
                        and not p.name.startswith(".") and "__pycache__" not in p.parts):
            digest.update(f"{f.relative_to(path).as_posix()}\0{sha256_file(f)}\0".encode())
        return digest.hexdigest()
    return sha256_file(path)


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
        return {key: _input_sha256(p) for key, p in sorted(self.inputs.items())}

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
        write_text(self.record_path, json.dumps(record, indent=2, default=str) + "\n")
        return record
