"""The same build under torchrun with two processes (gloo on CPU): the multi-GPU path, exercised on CPU."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .pipeline_fixtures import tiny_llama, tiny_recipe_text, write_recipe

pytestmark = [pytest.mark.builder, pytest.mark.slow]
__all__ = ["tiny_llama"]

REPO = Path(__file__).resolve().parents[2]


def test_two_processes_share_phase1_batches_and_run_the_other_stages_once(tiny_llama: Path, tmp_path: Path) -> None:
    torchrun = shutil.which("torchrun") or pytest.fail("torchrun (from torch) is not on PATH")
    recipe = write_recipe(tmp_path, tiny_recipe_text(tiny_llama, tmp_path / "unused-embedding"))
    out = tmp_path / "out"
    done = subprocess.run([torchrun, "--nproc_per_node", "2", "-m", "edge_assistant.cli", "build", str(recipe),
                           "--out", str(out), "--until", "merge", "--no-progress"],
                          env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}, cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    plan = json.loads((out / "phase1" / "record.json").read_text())["metrics"]["plan"]
    assert plan["world_size"] == 2 and plan["rows_per_step"] == 8  # 4 rows per process per step
    # Rank 0 alone runs and logs the single-process stages; no rank raced it to the files.
    assert done.stderr.count("[data] done") == 1 and done.stderr.count("[merge] done") == 1
    assert "2 device(s)" in done.stderr
    merge = json.loads((out / "merge" / "record.json").read_text())["metrics"]
    assert merge["max_abs_logit_diff"] <= 1e-3 and (out / "merge" / "model" / "model.safetensors").is_file()
