"""Disk the build needs: each stage's estimated footprint, checked against free space before it starts.

At 8B the stages write files of the model's own size: the merged model (16 GB
bf16), the f16 GGUF (16 GB), the quantized base (~5 GB), the modifiers'
dequantized base (16 GB). Running out of disk halfway through one of them
wastes the time spent so far, so ``check_free_space`` stops the build with one
line before a stage starts when its estimate does not fit. Estimates come from
the base's tensor shapes (read from the safetensors or GGUF headers, never the
data) and the recipe's dtypes; they are upper bounds with a small margin.

The modifiers stage's dequantized copy of the quantized base is an
intermediate: ``remove_intermediates`` deletes it when the build finishes
(``--keep-intermediates`` keeps it).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BuildError

if TYPE_CHECKING:
    from .context import BuildContext
    from .stage_record import StageRun

DEQUANTIZED_PREFIX = "base-dequantized-"  # <modifiers>/base-dequantized-<sha16>/, one per quantized base

_MARGIN = 1.05
_SMALL = 64 << 20  # stages that write only small files (data, router, evaluate)

# Upper bounds of bits per weight for llama.cpp file types (K-quant mixes keep some tensors larger).
_BITS = {"F32": 32.0, "F16": 16.0, "BF16": 16.0, "Q8_0": 8.5, "Q6_K": 6.6, "Q5_K_M": 5.7, "Q5_K_S": 5.6,
         "Q5_0": 5.5, "Q5_1": 6.0, "Q4_K_M": 4.9, "Q4_K_S": 4.6, "Q4_0": 4.5, "Q4_1": 5.0, "IQ4_NL": 4.5,
         "IQ4_XS": 4.3, "Q3_K_L": 4.3, "Q3_K_M": 3.9, "Q3_K_S": 3.5, "Q2_K": 3.4}
_OUTTYPE_BYTES = {"f32": 4.0, "f16": 2.0, "bf16": 2.0, "q8_0": 8.5 / 8}
# recipe target module -> the GGUF tensor kind it adapts
_TARGETS = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
            "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}
# LoRA bytes per trainable parameter on disk: the adapter (fp32) plus two kept checkpoints
# holding the weights and both AdamW moments (3 x fp32 each).
_LORA_BYTES = 4 + 2 * 12


def base_shapes(path: Path | None) -> dict[str, tuple[int, ...]] | None:
    """GGUF tensor name -> shape of the base's weights (from headers only), or None if not local."""
    if path is None or not Path(path).exists():
        return None
    path = Path(path)
    if path.is_file():
        from .gguf_index import read_tensor_index

        return {t.name: tuple(t.shape) for t in read_tensor_index(path)}
    from .safetensors_source import SafetensorsSource
    from .tensor_names import gguf_name

    shapes = {}
    with SafetensorsSource(path) as source:
        for name in source.names():
            mapped = gguf_name(name)
            shapes[mapped[0] if mapped else name] = source.shape(name)
    return shapes


def _lora_parameters(shapes: dict[str, tuple[int, ...]], rank: int, targets: tuple[str, ...]) -> int:
    kinds = {_TARGETS.get(t, t) for t in targets}
    return sum(rank * sum(shape) for name, shape in shapes.items()
               if len(shape) == 2 and name.split(".")[-2] in kinds)


def _train_dtype_bytes(dtype: str) -> int:
    if dtype == "auto":
        import torch

        return 2 if torch.cuda.is_available() else 4
    return 2 if dtype == "bf16" else 4


def stage_need(ctx: BuildContext, run: StageRun) -> int | None:
    """Estimated bytes stage ``run`` writes, or None when the base is not a local file to measure."""
    recipe = ctx.recipe
    name = run.name
    if name in ("data", "router", "evaluate"):
        return _SMALL
    if name == "bundle":  # copies of its base (unless the bundle refers to an installed one) and modifiers
        files = [run.inputs[m.name] for m in recipe.modifiers] + ([] if recipe.external_base else [run.inputs["base"]])
        return int(sum(f.stat().st_size for f in files if f.is_file()) * _MARGIN) + _SMALL
    shapes = base_shapes(ctx.source.local_path)
    if shapes is None:
        return None
    params = sum(math.prod(s) for s in shapes.values())
    if name == "phase1":
        cfg = recipe.phase1
        need = _LORA_BYTES * _lora_parameters(shapes, cfg.lora_r, cfg.target_modules)
    elif name == "merge":
        need = params * _train_dtype_bytes(recipe.phase1.dtype)
    elif name == "convert":
        need = params * _OUTTYPE_BYTES.get(recipe.quantize.outtype, 4.0)
        if ctx.awq:  # the AWQ-scaled copy of the merged model
            need += params * _train_dtype_bytes(recipe.phase1.dtype)
    elif name == "quantize":
        need = params * _BITS.get(recipe.quantize.qtype.upper(), 8.5) / 8
    elif name == "compare":  # the unscaled f16 (with AWQ) and one llama.cpp file at a time
        need = params * _BITS.get(recipe.quantize.qtype.upper(), 8.5) / 8 * 1.2
        if ctx.awq:
            need += params * _OUTTYPE_BYTES.get(recipe.quantize.outtype, 4.0)
    elif name == "modifiers":
        need = 0
        if not any(run.dir.glob(f"{DEQUANTIZED_PREFIX}*/config.json")):
            need += params * _train_dtype_bytes(recipe.modifier_training.dtype)
        for m in recipe.modifiers:
            cfg = recipe.modifier_train(m)
            need += (_LORA_BYTES + 2) * _lora_parameters(shapes, cfg.lora_r, cfg.target_modules)
    else:
        return _SMALL
    return int(need * _MARGIN) + _SMALL


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


def check_free_space(ctx: BuildContext, run: StageRun) -> None:
    """Stop before stage ``run`` starts when its estimated footprint does not fit on the output disk."""
    name = run.name
    need = stage_need(ctx, run)
    if need is None:
        return
    folder = ctx.out
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if free < need:
        raise BuildError(f"stage '{name}' needs about {_gb(need)} free under {ctx.out}, only {_gb(free)} is free",
                         hint="free some disk (finished stages' intermediates can go) or pass --out on a bigger disk")


def remove_intermediates(modifiers_dir: Path) -> int:
    """Delete the modifiers' dequantized base copies (in the modifiers stage's folder); returns the bytes freed."""
    freed = 0
    for folder in sorted(modifiers_dir.glob(f"{DEQUANTIZED_PREFIX}*")):
        freed += sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        shutil.rmtree(folder)
    return freed
