"""Phase 1 training throughput: tokens/s and MFU of the builder's own LoRA loop on a small Llama.

    python benchmarks/train_gpu.py                       # GPU if present (bf16), else CPU (fp32, labelled)
    python benchmarks/train_gpu.py --size 1b --steps 30  # a ~1B Llama shape
    accelerate launch --num_processes 2 benchmarks/train_gpu.py   # multi-GPU, same loop

A random Llama of the chosen shape is written to a temp folder and trained
through ``edge_assistant.builder.train.train_lora`` (the code phase 1 runs) on
random token rows, so the numbers are the pipeline's, not a toy loop's.
Three variants run in the same process; the first is the baseline of the
ratio column: LoRA on q/v, LoRA on all seven projections, and q/v with
gradient checkpointing.

MFU = achieved model FLOPs / peak. Model FLOPs per token for LoRA training:
2N (forward) + 2N (backward to activations; frozen weights get no weight
gradient) + 6 x trainable params + attention 12 * layers * hidden * seq.
Peak is looked up by GPU name (dense bf16) or given with --peak-tflops; on a
CPU there is no honest peak, so MFU is printed only when --peak-tflops is set.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Dense bf16 peak TFLOPS by substring of torch.cuda.get_device_name().
PEAK_BF16_TFLOPS = [("H200", 989.0), ("H100", 989.0), ("A100", 312.0), ("L40S", 362.0), ("L4", 121.0),
                    ("A10G", 70.0), ("4090", 165.0), ("3090", 71.0), ("V100", 125.0)]

# name -> (hidden, intermediate, layers, heads, kv heads, vocab)
SIZES = {
    "tiny": (128, 256, 2, 4, 2, 2048),
    "135m": (576, 1536, 30, 9, 3, 49152),      # SmolLM2-135M's shape
    "1b": (2048, 8192, 16, 32, 8, 128256),     # Llama 3.2 1B's shape
}


def _model_dir(size: str, root: Path) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    hidden, inter, layers, heads, kv, vocab = SIZES[size]
    config = LlamaConfig(hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=kv, vocab_size=vocab,
                         max_position_embeddings=4096, tie_word_embeddings=True)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(root / size, safe_serialization=True)
    return root / size


def _flops_per_token(model_dir: Path, trainable: int, seq: int) -> float:
    import json

    cfg = json.loads((model_dir / "config.json").read_text())
    from safetensors import safe_open

    with safe_open(str(model_dir / "model.safetensors"), "pt") as f:
        n = sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())
    return 4 * n + 6 * trainable + 12 * cfg["num_hidden_layers"] * cfg["hidden_size"] * seq


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default=None, help="default: 1b on GPU, tiny on CPU")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per variant (default 20 GPU, 3 CPU)")
    parser.add_argument("--batch", type=int, default=None, help="sequences per device (default 8 GPU, 2 CPU)")
    parser.add_argument("--seq", type=int, default=None, help="tokens per sequence (default 1024 GPU, 128 CPU)")
    parser.add_argument("--rank", type=int, default=64, help="LoRA rank")
    parser.add_argument("--peak-tflops", type=float, default=None, help="peak FLOPS for MFU (overrides the table)")
    parser.add_argument("--variants", default="qv,all7,qv+gc", help="comma list of qv, all7, qv+gc")
    args = parser.parse_args(argv)

    import torch

    from edge_assistant.builder.base_model import BaseSource
    from edge_assistant.builder.dataset import Example
    from edge_assistant.builder.recipe import TrainConfig
    from edge_assistant.builder.train import train_lora

    gpu = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if gpu else f"CPU ({os.cpu_count()} logical cores) - NOT a GPU figure"
    size = args.size or ("1b" if gpu else "tiny")
    steps = args.steps or (20 if gpu else 3)
    batch = args.batch or (8 if gpu else 2)
    seq = args.seq or (1024 if gpu else 128)
    peak = args.peak_tflops or (next((p for k, p in PEAK_BF16_TFLOPS if k in device), None) if gpu else None)
    dtype = "bf16" if gpu else "fp32"
    targets = {"qv": ("q_proj", "v_proj"), "all7": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                    "up_proj", "down_proj")}
    rows = []
    with tempfile.TemporaryDirectory(prefix="train-bench-") as tmp:
        model_dir = _model_dir(size, Path(tmp))
        vocab = SIZES[size][5]
        rng = random.Random(0)
        data = [Example(input_ids=ids, labels=ids) for ids in
                ([rng.randrange(vocab) for _ in range(seq)] for _ in range(batch * (steps + 1)))]
        for variant in args.variants.split(","):
            cfg = TrainConfig(batch_size=batch, max_seq_len=seq, max_steps=steps, lora_r=args.rank,
                              lora_alpha=2.0 * args.rank, target_modules=targets[variant.split("+")[0]],
                              gradient_checkpointing=variant.endswith("+gc"), dtype=dtype,
                              checkpoint_every=10 ** 9, learning_rate=1e-4)
            out = Path(tmp) / f"run-{variant}"
            result = train_lora(BaseSource(location=str(model_dir)), cfg, data, [], out_dir=out, seed=0,
                                pad_id=0, label=variant, progress=False, log=lambda s: None)
            from safetensors import safe_open

            with safe_open(str(result.adapter_dir / "adapter_model.safetensors"), "pt") as f:
                trainable = sum(f.get_tensor(k).numel() for k in f.keys())
            tok_s = result.tokens_seen / result.seconds
            mfu = tok_s * _flops_per_token(model_dir, trainable, seq) / (peak * 1e12) if peak else None
            rows.append((variant, tok_s, mfu, result.seconds))
    print(f"device: {device}; model: random Llama '{size}' {SIZES[size]}; {dtype}; batch {batch} x seq {seq}; "
          f"{steps} steps; LoRA r={args.rank}")
    print(f"{'variant':<8} {'tokens/s':>12} {'ratio':>7} {'MFU':>7} {'seconds':>8}")
    base = rows[0][1]
    for variant, tok_s, mfu, secs in rows:
        mfu_text = f"{mfu:.1%}" if mfu is not None else "n/a"
        print(f"{variant:<8} {tok_s:>12.1f} {tok_s / base:>6.2f}x {mfu_text:>7} {secs:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
