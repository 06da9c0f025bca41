"""Bundles for tests: the real SmolLM2 packed once per session, and hand-made ones.

The SmolLM2 bundle is ~93 MB, so it is packed once (fast zstd level) and cached
here; tests that damage a bundle work on a copy. Hand-made bundles compute every
manifest value with hashlib/zstandard directly, independently of the code under
test, so tests can state exactly what the manifest promises.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import zstandard

from edge_assistant.bundle.pack import ModifierInput, create_bundle

from .lora import write_random_lora

_cache: dict[Path, Path] = {}

SESSION_LEVEL = 1  # fastest: these tests check correctness, not ratio


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def smollm2_bundle(root: Path, base_gguf: Path) -> Path:
    """A bundle of the real SmolLM2 with one bound modifier ``code``, packed once per session.

    Treat it as read-only; copy it with ``copy_bundle`` before changing anything.
    """
    if base_gguf not in _cache:
        root.mkdir(parents=True, exist_ok=True)
        adapter = write_random_lora(root / "code.gguf", base_gguf, rank=8, base_sha256=file_sha256(base_gguf))
        _cache[base_gguf] = create_bundle(base_gguf, root / "smollm2", modifiers=[ModifierInput("code", adapter)],
                                          level=SESSION_LEVEL, threads=2)
    return _cache[base_gguf]


def copy_bundle(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def handmade_bundle(folder: Path, payload: bytes, *, stream: bytes | None = None,
                    size: int | None = None, sha256: str | None = None) -> Path:
    """A bundle whose base.gguf.zst is ``stream`` (default: zstd of ``payload``).

    The manifest describes ``payload`` (or the given ``size``/``sha256``) and
    matches the packed file exactly, so only the stream's content can be wrong.
    """
    folder.mkdir(parents=True)
    stream = zstandard.ZstdCompressor(level=1).compress(payload) if stream is None else stream
    (folder / "base.gguf.zst").write_bytes(stream)
    manifest = {
        "format_version": 1,
        "name": folder.name,
        "base": {
            "file": "base.gguf.zst",
            "sha256": sha256 or hashlib.sha256(payload).hexdigest(),
            "size": len(payload) if size is None else size,
            "packed_sha256": hashlib.sha256(stream).hexdigest(),
            "packed_size": len(stream),
            "arch": "llama",
            "quant_type": "F32",
            "context_length": 2048,
        },
        "modifiers": [],
        "router": None,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def edit_manifest(bundle: Path, edit) -> None:
    """Apply ``edit(dict)`` to a bundle's manifest.json in place."""
    path = bundle / "manifest.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def small_base(dst: Path, base_gguf: Path, nbytes: int = 3 << 20) -> Path:
    """The real base's first ``nbytes`` (its whole header, ~1.8 MB for SmolLM2, and a little
    weight data), then zeros up to the real file's size, as a sparse file: complete in the
    bundle tools' eyes (every tensor lies inside the file), cheap to write and to pack,
    never a working model."""
    with open(base_gguf, "rb") as f:
        dst.write_bytes(f.read(nbytes))
    os.truncate(dst, base_gguf.stat().st_size)
    return dst
