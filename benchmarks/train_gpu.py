"""Phase 1 training throughput: tokens/s and MFU of the builder's own LoRA loop, one variant per row.

    python benchmarks/train_gpu.py                        # GPU if present (bf16), else CPU (fp32, labelled)
    python benchmarks/train_gpu.py --size 135m            # the CPU comparison of each speed choice
    python benchmarks/train_gpu.py --size 8b --seq 2048 --rows full --variants sdpa,sdpa+gc --find-batch
    python benchmarks/train_gpu.py --quick                # tiny shape, a few seconds
    accelerate launch --num_processes 2 benchmarks/train_gpu.py   # multi-GPU, same loop

A random Llama of the chosen shape is built in this process (in bf16 directly
on the GPU when there is one) and trained through
``edge_assistant.builder.train.train_lora`` (the code phase 1 runs) on random
token rows, so the numbers are the pipeline's, not a toy loop's. Every variant
runs in the same process; the first is the baseline of the ratio column.

A variant is ``+``-joined choices: an attention kernel (sdpa, eager, flash =
flash_attention_2), ``gc`` (gradient checkpointing on; off otherwise), ``pack``
(several rows per sequence), ``compile`` (torch.compile), ``qv`` (LoRA on q/v
only; default all seven projections, the recipe's phase 1). ``--rows chat``
draws row lengths between seq/16 and seq/2 like chat data (where packing
matters); ``--rows full`` fills every row to seq.

tokens/s counts real (not padding) tokens and leaves out the first step, so
torch.compile's compilation and the allocator's warm-up are not in it; the
"first step s" column shows them. MFU = achieved model FLOPs / peak, with
model FLOPs per token for LoRA training = 2N (forward) + 2N (backward to
activations; frozen weights get no weight gradient) + 6 x trainable params +
12 * layers * hidden * seq (attention). Peak is looked up by GPU name (dense
bf16) or given with --peak-tflops; on a CPU MFU is printed only with --peak-tflops.

The 135M-shape CPU table (sdpa 1.00x, eager 1.01x, gc 0.72x, pack 1.21x) is in docs/build.md
"Training speed"; torch.compile is left out of the CPU defaults (its CPU compile takes
many minutes). No GPU figure exists yet: no device has been lent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Dense bf16 peak TFLOPS by substring of torch.cuda.get_device_name().
PEAK_BF16_TFLOPS = [("H200", 989.0), ("H100", 989.0), ("A100", 312.0), ("L40S", 362.0), ("L4", 121.0),
                    ("A10G", 70.0), ("4090", 165.0), ("3090", 71.0), ("V100", 125.0)]

# name -> (hidden, intermediate, layers, heads, kv heads, vocab, tied embeddings)
SIZES = {
    "tiny": (128, 256, 2, 4, 2, 2048, True),
    "135m": (576, 1536, 30, 9, 3, 49152, True),       # SmolLM2-135M's shape
    "1b": (2048, 8192, 16, 32, 8, 128256, True),      # Llama 3.2 1B's shape
    "8b": (4096, 14336, 32, 32, 8, 128256, False),    # Llama 3.1 8B's shape
}
ALL7 = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
KERNELS = {"sdpa": "sdpa", "eager": "eager", "flash": "flash_attention_2"}
GPU_VARIANTS = "sdpa,sdpa+gc"
CPU_VARIANTS = "sdpa,eager,sdpa+gc,sdpa+pack"


def llama_config(size: str, attention: str = "sdpa") -> Any:
    from transformers import LlamaConfig

    hidden, inter, layers, heads, kv, vocab, tied = SIZES[size]
    return LlamaConfig(hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                       num_attention_heads=heads, num_key_value_heads=kv, vocab_size=vocab,
                       max_position_embeddings=4096, tie_word_embeddings=tied, attn_implementation=attention)


def random_model(size: str, attention: str, gpu: bool) -> Any:
    """A random Llama of ``size``: bf16 and built on the GPU when there is one, fp32 on the CPU."""
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    dtype = torch.bfloat16 if gpu else torch.float32
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # built in its final dtype: an 8B never exists in fp32 on the GPU
    try:
        with torch.device("cuda" if gpu else "cpu"):
            return LlamaForCausalLM(llama_config(size, attention))
    finally:
        torch.set_default_dtype(default)


def random_rows(size: str, seq: int, n: int, rows: str, seed: int = 0) -> list[Any]:
    from edge_assistant.builder.dataset import Example

    vocab = SIZES[size][5]
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length = seq if rows == "full" else rng.randrange(max(2, seq // 16), max(3, seq // 2))
        ids = [rng.randrange(vocab) for _ in range(length)]
        out.append(Example(input_ids=ids, labels=ids))
    return out


def parse_variant(variant: str) -> dict[str, Any]:
    parts = variant.split("+")
    unknown = [p for p in parts if p not in KERNELS and p not in ("gc", "pack", "compile", "qv", "all7")]
    if unknown:
        raise SystemExit(f"error: unknown variant part {unknown[0]!r} in {variant!r} "
                         f"(hint: combine {', '.join(KERNELS)}, gc, pack, compile, qv, all7 with +)")
    kernel = next((KERNELS[p] for p in parts if p in KERNELS), "sdpa")
    return {"attention": kernel, "gradient_checkpointing": "gc" in parts, "packing": "pack" in parts,
            "compile": "compile" in parts, "target_modules": ("q_proj", "v_proj") if "qv" in parts else ALL7}


def run_variant(size: str, variant: str, *, batch: int, seq: int, steps: int, rank: int, rows: str,
                gpu: bool, peak: float | None, work: Path) -> dict[str, Any]:
    """One training run through train_lora; returns its throughput row."""
    import gc

    import torch

    from edge_assistant.builder.base_model import BaseSource
    from edge_assistant.builder.recipe import TrainConfig
    from edge_assistant.builder.train import train_lora

    choice = parse_variant(variant)
    model = random_model(size, choice["attention"], gpu)
    n_params = sum(p.numel() for p in model.parameters())
    cfg = TrainConfig(batch_size=batch, max_seq_len=seq, max_steps=steps, lora_r=rank, lora_alpha=2.0 * rank,
                      dtype="bf16" if gpu else "fp32", checkpoint_every=10 ** 9, learning_rate=1e-4, **choice)
    # Enough rows that no variant runs out: packing needs several rows per sequence.
    data = random_rows(size, seq, batch * (steps + 1) * (1 if rows == "full" else 8), rows)
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    try:
        work.mkdir(parents=True, exist_ok=True)
        out_dir = Path(tempfile.mkdtemp(prefix=f"{variant}-b{batch}-", dir=work))  # never resume another run
        result = train_lora(BaseSource(location=f"random-{size}"), cfg, data, [], out_dir=out_dir, seed=0,
                            pad_id=0, label=variant, progress=False, log=lambda s: None, model=model)
    finally:
        del model
        gc.collect()
        if gpu:
            torch.cuda.empty_cache()
    timed = result.plan["step_times"][1:] or result.plan["step_times"]
    tok_s = sum(t for _, t in timed) / sum(s for s, _ in timed)
    trainable = sum(rank * (a + b) for a, b in _lora_shapes(size, choice["target_modules"]))
    hidden, _, layers = SIZES[size][:3]
    flops = 4 * n_params + 6 * trainable + 12 * layers * hidden * seq
    return {"variant": variant, "tokens_per_s": tok_s, "mfu": tok_s * flops / (peak * 1e12) if peak else None,
            "first_step_s": result.plan["step_times"][0][0], "seconds": result.seconds, "batch": batch,
            "seq": seq, "steps": steps, "sequences": result.plan["sequences"],
            "peak_gpu_gb": (result.plan["peak_gpu_mb"] or 0) / 1024 if gpu else None}


def _lora_shapes(size: str, targets: tuple[str, ...]) -> list[tuple[int, int]]:
    hidden, inter, layers, heads, kv, _vocab, _tied = SIZES[size]
    head_dim = hidden // heads
    dims = {"q_proj": (hidden, hidden), "k_proj": (hidden, kv * head_dim), "v_proj": (hidden, kv * head_dim),
            "o_proj": (hidden, hidden), "gate_proj": (hidden, inter), "up_proj": (hidden, inter),
            "down_proj": (inter, hidden)}
    return [dims[t] for t in targets] * layers


def is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


def find_batch(size: str, variant: str, *, seq: int, rank: int, gpu: bool, peak: float | None, work: Path,
               start: int = 1, limit: int = 64) -> tuple[int, dict[str, Any] | None]:
    """The largest power-of-two batch that trains a few steps without running out of memory, and its row."""
    best, row = 0, None
    batch = start
    while batch <= limit:
        try:
            row = run_variant(size, variant, batch=batch, seq=seq, steps=6 if gpu else 3, rank=rank, rows="full",
                              gpu=gpu, peak=peak, work=work)
            best = batch
        except Exception as exc:  # noqa: BLE001 - only running out of memory ends the search
            if not is_oom(exc):
                raise
            break
        batch *= 2
    return best, row


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    print(title)
    print(f"{'variant':<16} {'batch':>5} {'tokens/s':>11} {'ratio':>7} {'MFU':>7} {'first step s':>12} "
          f"{'peak GPU GB':>11}")
    base = rows[0]["tokens_per_s"] if rows else 1.0
    for r in rows:
        mfu = f"{r['mfu']:.1%}" if r.get("mfu") is not None else "n/a"
        mem = f"{r['peak_gpu_gb']:.1f}" if r.get("peak_gpu_gb") else "n/a"
        variant = f"{r['variant']} (baseline)" if r is rows[0] else r["variant"]
        print(f"{variant:<16} {r['batch']:>5} {r['tokens_per_s']:>11.1f} {r['tokens_per_s'] / base:>6.2f}x "
              f"{mfu:>7} {r['first_step_s']:>12.1f} {mem:>11}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default=None, help="default: 1b on GPU, tiny on CPU")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per variant (default 20 GPU, 4 CPU)")
    parser.add_argument("--batch", type=int, default=None, help="sequences per device (default 8 GPU, 4 CPU)")
    parser.add_argument("--seq", type=int, default=None, help="tokens per sequence (default 2048 GPU, 256 CPU)")
    parser.add_argument("--rank", type=int, default=64, help="LoRA rank (default 64, the 8B recipe's)")
    parser.add_argument("--rows", choices=("chat", "full"), default=None,
                        help="row lengths: chat (seq/16..seq/2, default on CPU) or full (default on GPU)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="peak FLOPS for MFU (overrides the table)")
    parser.add_argument("--variants", default=None,
                        help=f"comma list (default GPU: {GPU_VARIANTS}; CPU: {CPU_VARIANTS})")
    parser.add_argument("--find-batch", action="store_true", help="also find the largest batch that fits (GPU)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny shape, seq 64, 3 steps, sdpa and sdpa+gc only: a smoke run in seconds")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)

    import torch

    gpu = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if gpu else f"CPU ({os.cpu_count()} logical cores) - NOT a GPU figure"
    size = "tiny" if args.quick else (args.size or ("1b" if gpu else "tiny"))
    steps = 3 if args.quick else (args.steps or (20 if gpu else 4))
    batch = args.batch or (8 if gpu else 4)
    seq = args.seq or (64 if args.quick else 2048 if gpu else 256)
    rows = args.rows or ("full" if gpu else "chat")
    peak = args.peak_tflops or (next((p for k, p in PEAK_BF16_TFLOPS if k in device), None) if gpu else None)
    variants = (args.variants or ("sdpa,sdpa+gc" if args.quick else GPU_VARIANTS if gpu else CPU_VARIANTS)).split(",")
    if not gpu and not args.variants and not args.quick:
        print("torch.compile is not in the CPU defaults: inductor's CPU compile of the training step takes "
              "many minutes here (pass --variants sdpa,sdpa+compile to measure it anyway)", flush=True)
    table: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="train-bench-") as tmp:
        for variant in variants:
            table.append(run_variant(size, variant, batch=batch, seq=seq, steps=steps, rank=args.rank, rows=rows,
                                     gpu=gpu, peak=peak, work=Path(tmp)))
            print(f"  {variant}: {table[-1]['tokens_per_s']:.1f} tokens/s "
                  f"(first step {table[-1]['first_step_s']:.1f} s)", flush=True)  # long CPU runs: as they come
        fits = {}
        if args.find_batch and gpu:
            for variant in variants:
                fits[variant], _row = find_batch(size, variant, seq=seq, rank=args.rank, gpu=gpu, peak=peak,
                                                 work=Path(tmp))
    print_table(f"device: {device}; random Llama '{size}' {SIZES[size][:6]}; {'bf16' if gpu else 'fp32'}; "
                f"batch {batch} x seq {seq} ({rows} rows); {steps} steps; LoRA r={args.rank}", table)
    for variant, best in fits.items():
        print(f"largest batch that fits ({variant}, seq {seq}): {best or 'none'}")
    if args.json:
        args.json.write_text(json.dumps({"device": device, "size": size, "rows": table, "batch_fits": fits},
                                        indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
