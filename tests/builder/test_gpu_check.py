"""The prepared device script runs end to end on CPU at a tiny shape, so it is known to work when a GPU comes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.builder, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_tiny_runs_every_part_and_writes_its_json(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OUT": str(tmp_path)}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--tiny"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["tiny"] is True
    rows = report["throughput"]["rows"]
    assert {r["variant"] for r in rows} == {"sdpa", "sdpa+gc"}
    assert all(r["tokens_per_s"] > 0 and r["batch"] >= 1 for r in rows)
    assert all(report["throughput"]["batch_fits"][v] >= 1 for v in ("sdpa", "sdpa+gc"))
    stages = [s["stage"] for s in report["pipeline"]]
    for expected in ("phase1", "merge", "convert", "quantize", "dequantize", "modifier", "LoRA -> GGUF"):
        assert any(expected in s for s in stages), (expected, stages)
    merge = next(s for s in report["pipeline"] if s["stage"].startswith("merge"))
    assert merge["max_abs_logit_diff"] <= 1e-3
    if report["gpus"] < 2:
        assert "skipped" in report["ddp"] and "DDP: skipped" in done.stdout
    assert "phase 1 throughput" in done.stdout and "pipeline stages" in done.stdout
