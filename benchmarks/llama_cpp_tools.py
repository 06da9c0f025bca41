"""Build llama.cpp's `llama-imatrix` and `llama-quantize` from the source vendored in llama-cpp-python.

Benchmark-only (never a runtime dependency): downloads the sdist of the installed
llama-cpp-python version with pip, configures its vendored llama.cpp with CMake and
builds the two tools with -j2 into a cache folder outside the repository. A second
run finds them there and builds nothing.

    python benchmarks/llama_cpp_tools.py            # prints the two tool paths
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

TOOLS = ("llama-imatrix", "llama-quantize")


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "edge-assistant-bench"


def _run(cmd: list[str], log: Path) -> None:
    with open(log, "a", encoding="utf-8") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        done = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        sys.exit(f"error: `{' '.join(cmd[:3])} ...` failed (exit {done.returncode}); see {log}")


def llama_tools(jobs: int = 2, say=print) -> dict[str, Path]:
    """Paths of llama-imatrix and llama-quantize, built once per llama-cpp-python version."""
    import llama_cpp

    version = llama_cpp.__version__
    root = cache_dir() / f"llama.cpp-{version}"
    bins = {t: root / "build" / "bin" / t for t in TOOLS}
    if all(p.is_file() for p in bins.values()):
        return bins
    if shutil.which("cmake") is None:
        sys.exit("error: cmake not found; install it (apt-get install cmake) to build llama.cpp's tools")
    root.mkdir(parents=True, exist_ok=True)
    log = root / "build.log"
    src = root / "src"
    if not (src / "vendor" / "llama.cpp" / "CMakeLists.txt").is_file():
        say(f"downloading the llama-cpp-python {version} sdist ...")
        dl = root / "sdist"
        _run([sys.executable, "-m", "pip", "download", f"llama-cpp-python=={version}", "--no-deps",
              "--no-binary", "llama-cpp-python", "-d", str(dl)], log)
        archive = next(dl.glob("llama_cpp_python-*.tar.gz"), None) or next(dl.glob("*.tar.gz"))
        tmp = root / "src.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        inner = next(tmp.iterdir())
        shutil.rmtree(src, ignore_errors=True)
        os.replace(inner, src)
        shutil.rmtree(tmp, ignore_errors=True)
    say(f"building {', '.join(TOOLS)} with -j{jobs} (several minutes; log: {log}) ...")
    build = root / "build"
    _run(["cmake", "-S", str(src / "vendor" / "llama.cpp"), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
          "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=OFF",
          "-DLLAMA_BUILD_TOOLS=ON", "-DGGML_NATIVE=OFF", "-DBUILD_SHARED_LIBS=OFF", "-DLLAMA_OPENSSL=OFF"], log)
    _run(["cmake", "--build", str(build), "--config", "Release", f"-j{jobs}", "--target", *TOOLS], log)
    missing = [t for t, p in bins.items() if not p.is_file()]
    if missing:
        sys.exit(f"error: the build finished without {', '.join(missing)}; see {log}")
    return bins


if __name__ == "__main__":
    for name, path in llama_tools().items():
        print(f"{name}: {path}")
