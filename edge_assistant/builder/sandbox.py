"""Run untrusted Python (a model's answer and its tests) in a child process that cannot do much harm.

The child runs in a fresh temporary folder with ``python -I`` (no user site, no
PYTHON* variables, no current directory on the path), under resource limits
(CPU seconds, address space, file size, open files), with
the network cut twice: in its own network namespace when ``unshare -rn`` works
on this machine, and by a guard installed before the code runs that makes every
socket operation fail. A wall-clock timeout kills the whole process group.

This is a seatbelt for grading answers of small models, not a security
boundary against a determined attacker.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Run in the child before the untrusted code: limits, then the socket guard, then the code.
_BOOTSTRAP = r"""
import resource, socket, sys
def _limit(which, value):
    try:
        soft, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))
    except (ValueError, OSError):
        pass
cpu, mem = int(sys.argv[2]), int(sys.argv[3])
_limit(resource.RLIMIT_CPU, cpu)
_limit(resource.RLIMIT_AS, mem)
_limit(resource.RLIMIT_FSIZE, 16 * 1024 * 1024)
_limit(resource.RLIMIT_NOFILE, 64)
def _blocked(*args, **kwargs):
    raise OSError("network access is disabled in the sandbox")
class _NoSocket(socket.socket):
    def __init__(self, *args, **kwargs):
        _blocked()
socket.socket = _NoSocket
for _name in ("create_connection", "create_server", "socketpair", "fromfd", "getaddrinfo", "gethostbyname",
              "gethostbyname_ex", "gethostbyaddr"):
    setattr(socket, _name, _blocked)
del _limit, _blocked, _NoSocket, _name, cpu, mem
with open(sys.argv[1], encoding="utf-8") as _f:
    _source = _f.read()
sys.argv = [sys.argv[1]]
exec(compile(_source, "solution.py", "exec"), {"__name__": "__main__"})
"""


@dataclass(frozen=True)
class SandboxResult:
    ok: bool            # exited 0 within the limits
    returncode: int | None
    timed_out: bool
    output: str         # the last part of stdout+stderr, for the report


@functools.lru_cache(maxsize=1)
def _unshare_prefix() -> tuple[str, ...]:
    """``unshare -rn`` when it works here (an unprivileged user namespace with no network), else ()."""
    tool = shutil.which("unshare")
    if tool is None or not sys.platform.startswith("linux"):
        return ()
    try:
        probe = subprocess.run([tool, "-rn", sys.executable, "-c", "pass"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return (tool, "-rn") if probe.returncode == 0 else ()


def network_namespace_available() -> bool:
    return bool(_unshare_prefix())


def run_python(source: str, *, timeout_s: float = 10.0, memory_mb: int = 512) -> SandboxResult:
    """Run ``source`` as a script in the sandbox; ok when it exits 0 before ``timeout_s``."""
    with tempfile.TemporaryDirectory(prefix="ea-sandbox-") as tmp:
        script = Path(tmp) / "solution.py"
        script.write_text(source, encoding="utf-8")
        cmd = [*_unshare_prefix(), sys.executable, "-I", "-c", _BOOTSTRAP, str(script),
               str(max(1, int(timeout_s))), str(memory_mb * 1024 * 1024)]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp, "TMPDIR": tmp, "LANG": "C.UTF-8"}
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, _ = proc.communicate()
            timed_out = True
        text = out.decode("utf-8", "replace")[-2000:]
        code = None if timed_out else proc.returncode
        return SandboxResult(ok=code == 0, returncode=code, timed_out=timed_out, output=text)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
