#!/usr/bin/env bash
# The prepared device check (issue 16): phase-1 throughput at the Llama-3.1-8B shape, the pipeline's
# stages at a 1B shape, DDP when there is more than one GPU. One table to stdout, gpu_check.json to $OUT.
#
#   bash benchmarks/gpu_check.sh            # on a GPU machine; fits 8 minutes on one H200
#   bash benchmarks/gpu_check.sh --tiny     # anywhere (CPU too): the same code at a tiny shape, ~1-3 min
#
# Needs torch, transformers, peft, accelerate (present on the device) and gguf, which the device
# lacks: put its wheel under wheels/ in the working tree (pip download gguf -d wheels --no-deps;
# wheels/ is git-ignored: name it in the device run's carry list) and this script installs it from there,
# offline. llama-cpp-python is optional: without it quantization uses the converter's q8_0.
# Extra arguments go to benchmarks/gpu_check.py (e.g. --skip pipeline, --out DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
if ! python3 -c "import gguf" 2>/dev/null; then
    wheel=$(ls wheels/gguf-*.whl 2>/dev/null | head -n 1 || true)
    if [ -z "$wheel" ]; then
        echo "error: the gguf package is missing (hint: pip download gguf -d wheels --no-deps, then rerun)" >&2
        exit 2
    fi
    python3 -m pip install --quiet --no-index --no-deps "$wheel"
fi
for module in torch transformers peft accelerate; do
    python3 -c "import $module" 2>/dev/null || {
        echo "error: python module $module is missing (hint: pip install 'edge-assistant[build]')" >&2; exit 2; }
done
exec python3 benchmarks/gpu_check.py "$@"
