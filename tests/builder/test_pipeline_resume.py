"""A build killed mid-stage (real subprocess, SIGKILL) resumes from that stage on rerun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .pipeline_fixtures import router_embedding_dir, tiny_llama, tiny_recipe_text, write_recipe

pytestmark = [pytest.mark.builder, pytest.mark.slow]
__all__ = ["router_embedding_dir", "tiny_llama"]

REPO = Path(__file__).resolve().parents[2]


def _build_cmd(recipe: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "edge_assistant.cli", "build", str(recipe), "--out", str(out), "--no-progress", *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def test_a_build_killed_during_phase1_resumes_that_stage_from_its_checkpoint(
        tiny_llama: Path, router_embedding_dir: Path, tmp_path: Path) -> None:
    # Phase 1 long enough to be caught between checkpoints: 40 steps, a checkpoint every 2.
    text = tiny_recipe_text(tiny_llama, router_embedding_dir).replace("max_steps = 4", "max_steps = 40", 1)
    recipe = write_recipe(tmp_path, text)
    out = tmp_path / "out"
    checkpoints = out / "phase1" / "checkpoints"
    proc = subprocess.Popen(_build_cmd(recipe, out, "--until", "merge"), env=_env(), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not list(checkpoints.glob("step-*.pt")):
            assert proc.poll() is None, "the build ended before phase 1 wrote a checkpoint"
            assert time.monotonic() < deadline, "no phase 1 checkpoint within 240 s"
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)  # the process group: nothing may survive to finish the stage
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert (out / "data" / "record.json").is_file()
    assert not (out / "phase1" / "record.json").exists(), "the killed stage must not look finished"
    assert not (out / "phase1" / "adapter").exists()

    rerun = subprocess.run(_build_cmd(recipe, out, "--until", "merge"), env=_env(), cwd=REPO,
                           capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "[data] unchanged since the last run: skipped" in rerun.stderr
    assert "phase1: resuming from step-" in rerun.stderr
    resumed = json.loads((out / "phase1" / "record.json").read_text())["metrics"]
    assert 0 < resumed["resumed_from_step"] < 40 and resumed["steps"] == 40
    # The loss history runs on unbroken from step 1: the checkpoint carried it across the kill.
    assert [s for s, _loss in resumed["train_loss"]] == list(range(1, 41))
    assert (out / "merge" / "record.json").is_file()
