"""Helpers for the hub and offline tests: a small real bundle, and the CLI in a child process.

The CLI runs in a child process because the hub client reads HF_ENDPOINT and
HF_HUB_OFFLINE once, at import; each child also loads ``netguard`` (a
sitecustomize) so that any connection leaving the machine fails and is logged.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_assistant.bundle.manifest import (BASE_PACKED_NAME, BaseEntry, Manifest, ModifierEntry,
                                            RouterEntry, write_manifest)

REPO_ROOT = Path(__file__).resolve().parents[2]
NETGUARD_DIR = Path(__file__).resolve().parent / "netguard"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tiny_gguf(path: Path, arch: str, *, adapter: bool = False, seed: int = 0, vocab: int = 512) -> Path:
    """A real GGUF file (header, metadata, tensors), 128 KB plus 256 bytes per ``vocab`` row."""
    import gguf

    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(path), arch)
    if adapter:
        writer.add_string("general.type", "adapter")
        writer.add_string("adapter.type", "lora")
        writer.add_float32("adapter.lora.alpha", 16.0)
        writer.add_tensor("blk.0.attn_q.weight.lora_a", rng.standard_normal((8, 64), dtype=np.float32))
        writer.add_tensor("blk.0.attn_q.weight.lora_b", rng.standard_normal((64, 8), dtype=np.float32))
    else:
        writer.add_context_length(256)
        writer.add_embedding_length(64)
        writer.add_block_count(1)
        writer.add_tensor("token_embd.weight", rng.standard_normal((vocab, 64), dtype=np.float32))
        writer.add_tensor("blk.0.attn_q.weight", rng.standard_normal((64, 64), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def make_bundle(folder: Path, name: str = "tiny", *, seed: int = 0, vocab: int = 512) -> Path:
    """A complete bundle: zstd-packed base GGUF, one LoRA GGUF, router files, REPORT.md, manifest.

    Random weights barely compress, so the packed base is about ``vocab`` * 256 bytes.
    """
    import zstandard

    folder.mkdir(parents=True)
    raw = _tiny_gguf(folder / "base.gguf", "llama", seed=seed, vocab=vocab)
    packed = folder / BASE_PACKED_NAME
    packed.write_bytes(zstandard.ZstdCompressor(level=3).compress(raw.read_bytes()))
    base = BaseEntry(file=BASE_PACKED_NAME, sha256=_sha(raw), size=raw.stat().st_size,
                     packed_sha256=_sha(packed), packed_size=packed.stat().st_size,
                     arch="llama", quant_type="F32", context_length=256)
    raw.unlink()
    (folder / "modifiers").mkdir()
    lora = _tiny_gguf(folder / "modifiers" / "code.gguf", "llama", adapter=True, seed=seed + 1)
    modifier = ModifierEntry(name="code", file="modifiers/code.gguf", sha256=_sha(lora), size=lora.stat().st_size,
                             base_sha256=base.sha256, rank=8, alpha=16.0, description="code help")
    (folder / "router").mkdir()
    (folder / "router" / "routes.json").write_text('{"code": ["python", "function"]}\n', encoding="utf-8")
    (folder / "router" / "keywords.txt").write_text("def\nclass\nimport\n", encoding="utf-8")
    router = RouterEntry(dir="router", threshold=0.5,
                         files={n: _sha(folder / "router" / n) for n in ("keywords.txt", "routes.json")})
    (folder / "REPORT.md").write_text(f"# {name}\n\nA tiny test bundle.\n", encoding="utf-8")
    write_manifest(folder, Manifest(name=name, base=base, modifiers=(modifier,), router=router,
                                    provenance={"recipe": "tests/integration/hubkit.py"}))
    return folder


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str
    network_attempts: list[str]


class Cli:
    """Runs ``python -m edge_assistant.cli`` with a loopback-only network and its own homes."""

    def __init__(self, tmp: Path, *, endpoint: str | None = None) -> None:
        self.home = tmp / "edge-home"
        self.hf_home = tmp / "hf-home"
        self.guard_log = tmp / "netguard.log"
        self.endpoint = endpoint

    def env(self, *, offline: bool = False, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "EDGE_ASSISTANT_"))}
        env.update({
            "PYTHONPATH": os.pathsep.join([str(NETGUARD_DIR), str(REPO_ROOT)]),
            "EDGE_ASSISTANT_HOME": str(self.home),
            "EDGE_ASSISTANT_THREADS": "1",
            "HF_HOME": str(self.hf_home),
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "EDGE_NETGUARD_LOG": str(self.guard_log),
            "OMP_NUM_THREADS": "1",
        })
        if self.endpoint:
            env["HF_ENDPOINT"] = self.endpoint
        if offline:
            env["HF_HUB_OFFLINE"] = "1"
        env.update(extra or {})
        return env

    def __call__(self, *args: str, offline: bool = False, timeout: float = 120,
                 extra_env: dict[str, str] | None = None) -> CliResult:
        done = subprocess.run([sys.executable, "-m", "edge_assistant.cli", *args], cwd=REPO_ROOT,
                              env=self.env(offline=offline, extra=extra_env), capture_output=True,
                              text=True, timeout=timeout)
        attempts = self.guard_log.read_text().splitlines() if self.guard_log.exists() else []
        return CliResult(done.returncode, done.stdout, done.stderr, attempts)

    @property
    def bundles(self) -> Path:
        return self.home / "data" / "bundles"


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative POSIX path (hidden bookkeeping files left out)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}
