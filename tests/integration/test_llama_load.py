"""Real llama.cpp decodes the real SmolLM2 Q4_1 through the loader and the engine without crashing.

On a CPU with AMX, llama.cpp 0.3.36's AMX kernels segfault in the first
``llama_decode`` of a quantized model (see runtime/llama_load.py). Each check
runs in its own process so a crash is a failed test with the signal named, not
a dead pytest.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.answers import on_topic_capital_answer

pytestmark = pytest.mark.real_model

REPO = Path(__file__).resolve().parents[2]


def _worker(gguf: Path, via: str, *extra: str) -> tuple[dict, str]:
    proc = subprocess.run([sys.executable, "-m", "tests.support.llama_load_worker", str(gguf), via, *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    if proc.returncode < 0:
        raise AssertionError(f"the {via} process died of {signal.Signals(-proc.returncode).name}: "
                             f"{proc.stderr[-2000:]}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def test_the_loader_decodes_the_quantized_base(smollm2_gguf):
    report, log = _worker(smollm2_gguf, "loader")
    assert on_topic_capital_answer(report["text"])
    assert report["use_extra_bufts"] is report["choice"]
    if "AMX" in report["offered"]:
        assert report["use_extra_bufts"] is False
        assert "AMX model buffer" not in log    # llama.cpp itself says where the weights went


def test_the_engine_decodes_the_quantized_base(smollm2_gguf):
    report, _ = _worker(smollm2_gguf, "engine")
    assert report["use_extra_bufts"] is report["choice"]
    assert on_topic_capital_answer(report["text"])


def test_forcing_repack_on_reaches_llama_cpp(smollm2_gguf):
    # Loading only: with AMX offered, decoding would crash (that is the bug this loader avoids).
    report, log = _worker(smollm2_gguf, "loader", "--weight-repack", "on", "--no-decode")
    assert report["use_extra_bufts"] is True
    if "AMX" in report["offered"]:
        assert "AMX model buffer" in log
    off, off_log = _worker(smollm2_gguf, "loader", "--weight-repack", "off", "--no-decode")
    assert off["use_extra_bufts"] is False
    assert not any(f"{name} model buffer" in off_log for name in report["offered"])
