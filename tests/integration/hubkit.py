"""Helpers for the hub and offline tests: a small real bundle, and the CLI in a child process.

The CLI runs in a child process because the hub client reads HF_ENDPOINT and
HF_HUB_OFFLINE once, at import; each child also loads ``netguard`` (a
sitecustomize) so that any connection leaving the machine fails and is logged.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np


REPO_ROOT = Path(__file__).resolve().parents[2]
REPO = "acme/tiny"   # the repository the pull tests publish their bundle as
NETGUARD_DIR = Path(__file__).resolve().parent / "netguard"


def _tiny_base_gguf(path: Path, *, seed: int, vocab: int) -> Path:
    """A real GGUF base (one Llama block, random F32 weights) of 64 KB plus 256 bytes per ``vocab`` row."""
    import gguf

    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(256)
    writer.add_embedding_length(64)
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", rng.standard_normal((vocab, 64), dtype=np.float32))
    for proj in ("attn_q", "attn_v"):
        writer.add_tensor(f"blk.0.{proj}.weight", rng.standard_normal((64, 64), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def make_bundle(folder: Path, name: str = "tiny", *, seed: int = 0, vocab: int = 512) -> Path:
    """A bundle made by the real ``create_bundle``: a tiny base, one bound LoRA, router files, a report.

    Random weights barely compress, so the packed base is about ``vocab`` * 256 bytes.
    """
    from edge_assistant.bundle.pack import ModifierInput, create_bundle
    from edge_assistant.hashing import sha256_file
    from tests.support.lora import write_random_lora

    inputs = folder.parent / f".{folder.name}-inputs"
    (inputs / "router").mkdir(parents=True)
    base = _tiny_base_gguf(inputs / "base.gguf", seed=seed, vocab=vocab)
    lora = write_random_lora(inputs / "code.gguf", base, rank=4, base_sha256=sha256_file(base), seed=seed)
    (inputs / "router" / "routes.json").write_text('{"code": ["python", "function"]}\n', encoding="utf-8")
    (inputs / "router" / "keywords.txt").write_text("def\nclass\nimport\n", encoding="utf-8")
    (inputs / "REPORT.md").write_text(f"# {name}\n\nA tiny test bundle.\n", encoding="utf-8")
    return create_bundle(base, folder, name=name, modifiers=[ModifierInput("code", lora, "code help")],
                         router_dir=inputs / "router", router_threshold=0.5, report=inputs / "REPORT.md",
                         provenance={"recipe": "tests/integration/hubkit.py"}, threads=1)


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


def error_line(stderr: str) -> str:
    """The one ``edge-assistant: error:`` line a failed command printed (and no traceback)."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("edge-assistant: error:")]
    assert len(lines) == 1, stderr
    return lines[0]
