"""Unpack across real processes: two first runs at once, and a run killed mid-unpack."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_assistant.bundle.manifest import load_manifest
from edge_assistant.bundle.unpack import unpack_base
from tests.support.bundles import file_sha256, smollm2_bundle

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory, smollm2_gguf: Path) -> Path:
    return smollm2_bundle(tmp_path_factory.getbasetemp() / "smollm2-bundle", smollm2_gguf)


def _worker(bundle: Path, cache: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tests.support.unpack_worker", str(bundle), str(cache), *extra],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_two_processes_unpacking_at_once_unpack_once_and_both_succeed(bundle_dir: Path, tmp_path: Path,
                                                                      smollm2_gguf: Path) -> None:
    cache = tmp_path / "cache"
    go = tmp_path / "go"
    # --delay makes the unpack take about a second, so the other process surely arrives meanwhile.
    workers = [_worker(bundle_dir, cache, "--delay", "0.01", "--ready", str(tmp_path / f"ready{i}"), "--go", str(go))
               for i in range(2)]
    _wait_for(lambda: all((tmp_path / f"ready{i}").exists() for i in range(2)), 60, "both workers to start")
    go.touch()
    results = [w.communicate(timeout=120) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], results
    paths = {json.loads(out)["path"] for out, _ in results}
    logs = "".join(err for _, err in results)
    assert logs.count("unpack: unpacking ") == 1, logs  # one process did the work
    assert logs.count("waiting for another process") == 1, logs  # the other met it mid-unpack
    assert logs.count("reusing ") == 1, logs            # and then took its file
    (path,) = paths
    assert file_sha256(Path(path)) == file_sha256(smollm2_gguf)
    assert sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock")) == [Path(path).name, f"{Path(path).name}.stamp"]


def test_a_process_killed_mid_unpack_leaves_no_final_file_and_the_next_run_succeeds(
        bundle_dir: Path, tmp_path: Path, smollm2_gguf: Path) -> None:
    cache = tmp_path / "cache"
    manifest = load_manifest(bundle_dir)
    final = cache / f"{manifest.base.sha256}.gguf"
    worker = _worker(bundle_dir, cache, "--delay", "0.05")  # ~5 s for the whole base: plenty of time to kill it

    def temp_has_data() -> bool:
        return cache.exists() and any(p.stat().st_size >= 4 << 20 for p in cache.glob(".*.tmp"))

    try:
        _wait_for(temp_has_data, 60, "the worker to write 4 MB")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.communicate(timeout=30)
    assert worker.returncode == -signal.SIGKILL
    assert not final.exists()
    assert len(list(cache.glob(".*.tmp"))) == 1  # what the dead process left

    path = unpack_base(bundle_dir, manifest, cache_dir=cache)
    assert path == final
    assert file_sha256(final) == file_sha256(smollm2_gguf)
    assert list(cache.glob(".*.tmp")) == []
