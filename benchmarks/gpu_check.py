"""The prepared device check behind benchmarks/gpu_check.sh: one table to stdout, one JSON file.

    python benchmarks/gpu_check.py --out DIR          # on a GPU: the real shapes (fits 8 minutes on one H200)
    python benchmarks/gpu_check.py --tiny --out DIR   # anywhere, CPU included: the same code at a tiny shape

Three parts, each through the builder's own code:
  throughput  phase 1 at the Llama-3.1-8B shape (random bf16 weights built on the GPU), LoRA r=64 on
              all seven projections, seq 2048, through train_lora: tokens/s and MFU without and with
              gradient checkpointing, at the largest power-of-two batch that fits
  pipeline    the stages on a Llama-3.2-1B shape: phase 1 (a few steps), merge with its logit
              equivalence check, HF -> GGUF f16, quantization (llama.cpp Q4_K_M when llama_cpp is
              importable, else the converter's q8_0), the quantized base dequantized for the
              modifiers, a modifier trained on it, LoRA -> GGUF; each stage's seconds
  ddp         with more than one GPU, the throughput run again under `accelerate launch` and its
              scaling ratio; otherwise recorded as skipped
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import train_gpu  # noqa: E402  (the benchmark's model builder, variants and MFU arithmetic)


def _device() -> tuple[bool, str, float | None, int]:
    import torch

    if not torch.cuda.is_available():
        return False, f"CPU ({os.cpu_count()} logical cores) - NOT a GPU figure", None, 0
    name = torch.cuda.get_device_name(0)
    peak = next((p for k, p in train_gpu.PEAK_BF16_TFLOPS if k in name), None)
    return True, name, peak, torch.cuda.device_count()


def throughput(size: str, seq: int, gpu: bool, peak: float | None, work: Path, max_batch: int) -> dict[str, Any]:
    rows, fits = [], {}
    for variant in ("sdpa", "sdpa+gc"):
        best, row = train_gpu.find_batch(size, variant, seq=seq, rank=64, gpu=gpu, peak=peak, work=work,
                                         limit=max_batch)
        fits[variant] = best
        if row is not None:
            rows.append(row)
    return {"rows": rows, "batch_fits": fits}


def _timed(stages: list[dict[str, Any]], name: str, fn: Any, **extra: Any) -> Any:
    started = time.perf_counter()
    value = fn()
    stages.append({"stage": name, "seconds": time.perf_counter() - started, **extra})
    print(f"  {name}: {stages[-1]['seconds']:.1f} s", flush=True)
    return value


def pipeline(size: str, seq: int, gpu: bool, work: Path, steps: int) -> list[dict[str, Any]]:
    import torch

    from edge_assistant.builder.base_model import BaseSource, gguf_source, load_model
    from edge_assistant.builder.convert import convert_hf_to_gguf
    from edge_assistant.builder.lora_convert import convert_lora_to_gguf
    from edge_assistant.builder.merge import merge_lora, save_model_dir
    from edge_assistant.builder.recipe import TrainConfig
    from edge_assistant.builder.train import train_lora
    from tests.builder.model_factory import smollm_tokenizer  # a byte-level BPE built offline, no files

    dtype = "bf16" if gpu else "fp32"
    stages: list[dict[str, Any]] = []
    tokenizer = smollm_tokenizer()

    def prepare() -> Path:
        model = train_gpu.random_model(size, "sdpa", gpu)
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        return save_model_dir(model, tokenizer, work / "base")

    base = _timed(stages, "prepare random base (not a stage)", prepare)
    data = train_gpu.random_rows(size, seq, 8 * (steps + 1), "full")
    val = data[:2]

    def cfg(targets: tuple[str, ...]) -> TrainConfig:
        return TrainConfig(batch_size=4, max_seq_len=seq, max_steps=steps, lora_r=64, lora_alpha=128.0,
                           target_modules=targets, dtype=dtype, checkpoint_every=10 ** 9, learning_rate=1e-4)

    phase1 = _timed(stages, "phase1", lambda: train_lora(
        BaseSource(location=str(base)), cfg(train_gpu.ALL7), data, val, out_dir=work / "phase1", seed=0,
        pad_id=tokenizer.pad_token_id, label="phase1", progress=False, log=lambda s: None))
    merged = _timed(stages, "merge + equivalence check", lambda: merge_lora(
        BaseSource(location=str(base)), phase1.adapter_dir, tokenizer, val, work / "merged", dtype=dtype,
        tolerance=0.5 if gpu else 1e-3))
    stages[-1]["max_abs_logit_diff"] = merged.max_abs_logit_diff
    if gpu:
        torch.cuda.empty_cache()
    f16 = _timed(stages, "convert HF -> GGUF f16", lambda: convert_hf_to_gguf(
        merged.model_dir, work / "model-f16.gguf", outtype="f16"))
    try:
        import llama_cpp  # noqa: F401

        from edge_assistant.builder.quantize import quantize_gguf

        quantized = _timed(stages, "quantize f16 -> Q4_K_M (llama.cpp)", lambda: quantize_gguf(
            f16, work / "model-Q4_K_M.gguf", "Q4_K_M").path)
    except ImportError:
        quantized = _timed(stages, "quantize -> q8_0 (converter; no llama.cpp here)", lambda: convert_hf_to_gguf(
            merged.model_dir, work / "model-q8_0.gguf", outtype="q8_0"))
    dequantized = _timed(stages, "dequantize the quantized base", lambda: save_model_dir(
        load_model(gguf_source(Path(quantized)), dtype), tokenizer, work / "base-dequantized"))
    modifier = _timed(stages, "modifier training (q/v)", lambda: train_lora(
        BaseSource(location=str(dequantized)), cfg(("q_proj", "v_proj")), data, val, out_dir=work / "modifier",
        seed=0, pad_id=tokenizer.pad_token_id, label="modifier", progress=False, log=lambda s: None))
    _timed(stages, "LoRA -> GGUF", lambda: convert_lora_to_gguf(modifier.adapter_dir, Path(quantized),
                                                                work / "modifier.gguf"))
    return stages


def ddp(size: str, seq: int, n_gpus: int, single: dict[str, Any] | None, work: Path) -> dict[str, Any]:
    if n_gpus < 2 or single is None:
        return {"skipped": f"{n_gpus} GPU(s): DDP needs more than one"}
    out = work / "ddp.json"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(n_gpus),
               str(ROOT / "benchmarks" / "train_gpu.py"), "--size", size, "--seq", str(seq), "--rows", "full",
               "--batch", str(single["batch"]), "--steps", "6", "--variants", single["variant"], "--json", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode != 0 or not out.is_file():
        return {"failed": done.stderr[-2000:]}
    row = json.loads(out.read_text())["rows"][0]
    return {"gpus": n_gpus, "tokens_per_s": row["tokens_per_s"],
            "scaling": row["tokens_per_s"] / single["tokens_per_s"], "per_gpu_efficiency":
            row["tokens_per_s"] / single["tokens_per_s"] / n_gpus}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny shapes: runs anywhere in about a minute")
    parser.add_argument("--out", type=Path, default=None, help="folder for gpu_check.json (default: $OUT or .)")
    parser.add_argument("--skip", default="", help="comma list of parts to leave out: throughput,pipeline,ddp")
    args = parser.parse_args(argv)
    out_dir = args.out or Path(os.environ.get("OUT") or ".")
    out_dir.mkdir(parents=True, exist_ok=True)
    skip = set(filter(None, args.skip.split(",")))

    gpu, device, peak, n_gpus = _device()
    big, small = ("tiny", "tiny") if args.tiny else ("8b", "1b")
    seq = 128 if args.tiny else 2048
    report: dict[str, Any] = {"device": device, "gpus": n_gpus, "tiny": args.tiny, "python": platform.python_version(),
                              "shapes": {"throughput": big, "pipeline": small}, "seq": seq}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        work = Path(tmp)
        if "throughput" not in skip:
            print(f"[throughput] {big} shape, seq {seq}, LoRA r=64 on all seven projections", flush=True)
            report["throughput"] = throughput(big, seq, gpu, peak, work / "t", max_batch=4 if args.tiny else 64)
        if "pipeline" not in skip:
            print(f"[pipeline] {small} shape", flush=True)
            report["pipeline"] = pipeline(small, 128 if args.tiny else 1024, gpu, work / "p",
                                          steps=3 if args.tiny else 5)
        if "ddp" not in skip:
            rows = report.get("throughput", {}).get("rows", [])
            best = max(rows, key=lambda r: r["tokens_per_s"]) if rows else None
            report["ddp"] = ddp(big, seq, n_gpus, best, work / "d")
    report["seconds"] = time.perf_counter() - started

    print(f"\ngpu_check on {device}; {report['seconds']:.0f} s in all")
    if "throughput" in report:
        train_gpu.print_table(f"\nphase 1 throughput, random Llama '{big}', seq {seq}, LoRA r=64 all seven, "
                              "at the largest batch that fits", report["throughput"]["rows"])
        print(f"largest batch that fits: {report['throughput']['batch_fits']}")
    if "pipeline" in report:
        print(f"\npipeline stages, random Llama '{small}'")
        print(f"{'stage':<48} {'seconds':>8}")
        for s in report["pipeline"]:
            print(f"{s['stage']:<48} {s['seconds']:>8.1f}")
    if "ddp" in report:
        d = report["ddp"]
        print("\nDDP: " + (f"skipped ({d['skipped']})" if "skipped" in d else
                           f"failed: {d['failed'][-300:]}" if "failed" in d else
                           f"{d['gpus']} GPUs {d['tokens_per_s']:.0f} tokens/s, scaling {d['scaling']:.2f}x "
                           f"({d['per_gpu_efficiency']:.0%} per GPU)"))
    path = out_dir / "gpu_check.json"
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
