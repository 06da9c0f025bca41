"""The packaging scripts, end to end: build the wheel, install it with pipx, run it with no network.

This needs the package registry for the install (as any pipx install does) and
reuses pip's wheel cache for llama-cpp-python; everything it installs lives in
a throw-away PIPX_HOME that the script removes.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.hubkit import REPO_ROOT


@pytest.mark.slow
@pytest.mark.real_model
def test_the_built_wheel_installs_with_pipx_and_answers_offline(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGE_ASSISTANT_", "HF_", "PYTHONPATH"))}
    dist = tmp_path / "dist"
    built = subprocess.run(["bash", "packaging/build_dist.sh", str(dist)], cwd=REPO_ROOT, env=env,
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    wheels = sorted(dist.glob("edge_assistant-*.whl"))
    assert len(wheels) == 1 and sorted(dist.glob("edge_assistant-*.tar.gz"))

    smoke = subprocess.run(["bash", "packaging/pipx_smoke.sh", str(wheels[0])], cwd=REPO_ROOT, env=env,
                           capture_output=True, text=True, timeout=1500)

    output = smoke.stdout + smoke.stderr
    assert smoke.returncode == 0, output[-6000:]
    assert "no torch, transformers or peft" in output
    assert "networking: off" in output or "networking: NOTE" in output
    assert "all good" in output          # doctor
    assert "answer: '" in output and "== pipx smoke passed" in output
