"""Every benchmark in benchmarks/ runs to its end in its --quick mode from a clean home, so a broken one fails CI.

The list is discovered: a new benchmark is run here without being added. One that cannot
run quick is named in NOT_RUN with the reason. Each run is a subprocess with a fresh
EDGE_ASSISTANT_HOME and a timeout; it must exit 0 and print its table, which names its
baseline (the project's benchmarks print ratios against a baseline measured in the same run).
Measures nothing itself: the figures are the benchmark's, printed for whoever reads the log.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"
TIMEOUT_S = 900  # far over any quick run on 2 busy cores; a hang fails instead of stalling CI

NOT_RUN = {
    "gpu_check.sh": "tests/builder/test_gpu_check.py runs it (--tiny) and checks the JSON it writes",
    "gpu_check.py": "the script behind gpu_check.sh, run through it by tests/builder/test_gpu_check.py",
    "llama_cpp_tools.py": "not a benchmark: the helper that downloads llama-cpp-python's sdist and builds "
                          "llama.cpp's tools for awq_compress.py's full run (network, minutes of compiling)",
}


def discovered() -> list[str]:
    return sorted(p.name for p in BENCHMARKS.iterdir()
                  if p.is_file() and p.suffix in (".py", ".sh") and not p.name.startswith("_"))


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def test_every_exclusion_names_a_benchmark_that_exists() -> None:
    assert set(NOT_RUN) <= set(discovered()), set(NOT_RUN) - set(discovered())


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in discovered() if n not in NOT_RUN])
def test_benchmark_quick_mode_runs_to_its_end_and_prints_its_table(name: str, tmp_path: Path,
                                                                   edge_home: Path) -> None:
    script = BENCHMARKS / name
    command = ["bash", str(script), "--quick"] if script.suffix == ".sh" else [sys.executable, str(script), "--quick"]
    env = {**os.environ, "EDGE_ASSISTANT_HOME": str(edge_home), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "TOKENIZERS_PARALLELISM": "false", "TMPDIR": str(tmp_path)}
    started, cpu_before = time.perf_counter(), _children_cpu_s()
    try:
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        pytest.fail(f"{name} --quick did not finish in {TIMEOUT_S} s; its output so far:\n{out[-3000:]}")
    print(f"{name} --quick: {time.perf_counter() - started:.1f} s wall, {_children_cpu_s() - cpu_before:.1f} s CPU, "
          f"load average {os.getloadavg()[0]:.1f}\n{done.stdout}")
    assert done.returncode == 0, f"{name} --quick exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert "baseline" in done.stdout.lower(), f"{name} --quick printed no table naming its baseline:\n{done.stdout}"
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
