"""How many CPU threads llama.cpp gets.

llama.cpp spins its threads: with more threads than *free* cores it collapses
(measured on a 2-core machine: 74 tok/s with 1 thread, under 1 tok/s with 2
threads while the other core was busy). So the default is one thread per
physical core that is not already busy, leaving one core for the UI and the
rest of the system; users can set `threads` explicitly.
"""

from __future__ import annotations

import os
from pathlib import Path

# More threads than this is a typo, not a machine: llama.cpp crashes (SIGSEGV) creating 100000.
MAX_THREADS = 256


def usable_cpus() -> int:
    """Logical CPUs this process may run on (respects affinity and cgroup pinning)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def physical_cores() -> int:
    """Physical cores, from /proc/cpuinfo where available; else the logical count."""
    cpuinfo = Path("/proc/cpuinfo")
    try:
        text = cpuinfo.read_text()
    except OSError:
        return usable_cpus()
    cores: set[tuple[str, str]] = set()
    physical = core = None
    for line in text.splitlines():
        if line.startswith("physical id"):
            physical = line.split(":", 1)[1].strip()
        elif line.startswith("core id"):
            core = line.split(":", 1)[1].strip()
        elif not line.strip():
            if physical is not None and core is not None:
                cores.add((physical, core))
            physical = core = None
    if physical is not None and core is not None:
        cores.add((physical, core))
    return min(len(cores), usable_cpus()) if cores else usable_cpus()


def busy_cpus() -> int:
    """CPUs kept busy by other processes, from the 1-minute load average (0 if unknown)."""
    try:
        return int(os.getloadavg()[0] + 0.5)
    except (AttributeError, OSError):
        return 0


def choose_threads(requested: int = 0) -> int:
    """``requested`` if positive (at most ``MAX_THREADS``), else one per free physical core,
    leaving one CPU spare. Settings refuse more than ``MAX_THREADS`` with a message; this is the
    last guard for callers that skip them."""
    if requested > 0:
        return min(requested, MAX_THREADS)
    cpus = usable_cpus()
    free = cpus - min(busy_cpus(), cpus - 1)
    return max(1, min(physical_cores(), free, cpus - 1))
