#!/usr/bin/env bash
# Install everything the tests need, then run them all. README's test command; CI runs it too.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# torch first, pinned: 2.13.0 is the CPU build; an open range would pull a multi-GB CUDA build.
"$PY" -m pip install --quiet "torch==2.13.0"
# llama-cpp-python compiles from source (about 6 minutes on 2 cores); leave out the parts
# the runtime never uses. pip reuses the wheel on later runs on the same machine.
export CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF}"
"$PY" -m pip install --quiet -e ".[build,demo,dev]"

# Architecture contract: runtime/bundle/router never import the builder stack or textual.
lint-imports
"$PY" -m pytest "$@"
