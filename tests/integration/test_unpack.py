"""Unpack-once into the cache: reuse, integrity, size cap, free space, stale temps."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard

from edge_assistant import paths
from edge_assistant.bundle.manifest import load_manifest
from edge_assistant.bundle.unpack import unpack_base
from edge_assistant.bundle.verify import verify_bundle
from edge_assistant.errors import DiskSpaceError, IntegrityError
from tests.support.bundles import copy_bundle, file_sha256, handmade_bundle, smollm2_bundle

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory, smollm2_gguf: Path) -> Path:
    return smollm2_bundle(tmp_path_factory.getbasetemp() / "smollm2-bundle", smollm2_gguf)


def _cache_entries() -> list[str]:
    folder = paths.bases_cache_dir()
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock")) if folder.exists() else []


def test_create_verify_unpack_then_a_second_unpack_reuses_the_file(bundle_dir: Path, smollm2_gguf: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    verify_bundle(bundle_dir)
    manifest = load_manifest(bundle_dir)
    caplog.set_level(logging.INFO, logger="edge_assistant.bundle.unpack")
    first = unpack_base(bundle_dir, manifest)
    assert first == paths.bases_cache_dir() / f"{file_sha256(smollm2_gguf)}.gguf"
    assert file_sha256(first) == file_sha256(smollm2_gguf)
    assert first.read_bytes()[:4] == b"GGUF"
    before = first.stat()
    assert sum("unpacking" in r.message for r in caplog.records) == 1

    second = unpack_base(bundle_dir, manifest)
    after = second.stat()
    assert second == first
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # the same file, untouched
    assert sum("unpacking" in r.message for r in caplog.records) == 1
    assert _cache_entries() == [first.name, f"{first.name}.stamp"]  # no temp files left


def test_a_flipped_byte_fails_the_unpack_and_leaves_nothing(bundle_dir: Path, tmp_path: Path) -> None:
    copy = copy_bundle(bundle_dir, tmp_path / "copy")
    with open(copy / "base.gguf.zst", "r+b") as f:
        f.seek(50_000_000)
        byte = f.read(1)
        f.seek(50_000_000)
        f.write(bytes([byte[0] ^ 0x80]))
    with pytest.raises(IntegrityError, match="base.gguf.zst"):
        unpack_base(copy, load_manifest(copy))
    assert _cache_entries() == []


def test_a_truncated_stream_fails_and_leaves_nothing(tmp_path: Path) -> None:
    payload = b"GGUF" + os.urandom(1 << 20) + bytes(3 << 20)
    stream = zstandard.ZstdCompressor(level=1).compress(payload)
    # The manifest agrees with the cut file, so only the stream itself can tell.
    bundle = handmade_bundle(tmp_path / "b", payload, stream=stream[: len(stream) * 2 // 3])
    with pytest.raises(IntegrityError, match="base.gguf.zst"):
        unpack_base(bundle, load_manifest(bundle))
    assert _cache_entries() == []


def test_a_packed_file_of_the_wrong_size_is_refused_before_unpacking(bundle_dir: Path, tmp_path: Path) -> None:
    copy = copy_bundle(bundle_dir, tmp_path / "copy")
    with open(copy / "base.gguf.zst", "r+b") as f:
        f.truncate(1 << 20)
    with pytest.raises(IntegrityError, match=r"base.gguf.zst is 1048576 bytes, the manifest says"):
        unpack_base(copy, load_manifest(copy))
    assert _cache_entries() == []


def test_a_stream_longer_than_the_manifest_stops_at_its_size_under_a_kernel_cap(tmp_path: Path,
                                                                               edge_home: Path) -> None:
    payload = b"GGUF" + os.urandom(2 << 20)
    size = 1 << 20
    bundle = handmade_bundle(tmp_path / "b", payload, size=size, sha256=hashlib.sha256(payload[:size]).hexdigest())
    cache = tmp_path / "cache"
    # RLIMIT_FSIZE = the manifest's size: one byte written past it would fail with EFBIG (an OSError),
    # so getting our IntegrityError proves the unpack never wrote past the size.
    proc = subprocess.run([sys.executable, "-m", "tests.support.unpack_worker", str(bundle), str(cache),
                           "--fsize-limit", str(size)], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    result = json.loads(proc.stdout)
    assert result["error"] == "IntegrityError", proc.stderr
    assert "decompresses to more than the manifest's 1048576 bytes (stopped there)" in result["message"]
    assert sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock")) == []


def test_not_enough_free_space_is_refused_before_writing(bundle_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = shutil.disk_usage

    def nearly_full(path: object) -> object:
        usage = real(path)
        return usage._replace(free=50 << 20)

    monkeypatch.setattr(shutil, "disk_usage", nearly_full)
    with pytest.raises(DiskSpaceError, match=r"needs 98 MB free in .*, only 52 MB are — free some disk space"):
        unpack_base(bundle_dir, load_manifest(bundle_dir))
    assert _cache_entries() == []


def test_a_file_of_the_wrong_size_under_the_final_name_is_replaced(bundle_dir: Path, smollm2_gguf: Path) -> None:
    manifest = load_manifest(bundle_dir)
    final = paths.bases_cache_dir() / f"{manifest.base.sha256}.gguf"
    final.parent.mkdir(parents=True)
    final.write_bytes(b"GGUF half a copy")
    assert unpack_base(bundle_dir, manifest) == final
    assert file_sha256(final) == file_sha256(smollm2_gguf)


def test_a_stale_temp_from_a_killed_process_is_removed_by_the_next_run(bundle_dir: Path) -> None:
    manifest = load_manifest(bundle_dir)
    folder = paths.bases_cache_dir()
    folder.mkdir(parents=True)
    stale = folder / f".{manifest.base.sha256}.gguf.99999-deadbeef.tmp"
    stale.write_bytes(b"GGUF" + bytes(1000))
    final = unpack_base(bundle_dir, manifest)
    assert not stale.exists()
    assert _cache_entries() == [final.name, f"{final.name}.stamp"]
