"""llama.cpp's per-tensor type rules for a quantization mix (Q4_K_M, Q3_K_M, IQ2_XS, ...), as data and code.

`plan_mix(tensors, mix, model)` gives the ggml type of every tensor exactly as
`llama_model_quantize` chooses it (llama-quant.cpp, llama.cpp as vendored in
llama-cpp-python 0.3.36): which tensors are quantized at all, the mix's default
type, its per-tensor upgrades (attn_v, ffn_down, attn_output, the output matrix,
the embeddings) and the fallback when a row does not split into whole blocks.

Where it differs from llama.cpp, on purpose and only for models we never build:
- mixture-of-experts rules (n_expert > 1) and the Falcon, GLM5-next and MXFP4_MOE
  special cases are not reproduced: a model with experts is refused;
- `--tensor-type` overrides, `--pure`, `--output-tensor-type` and
  `--token-embedding-type` are not options here (`plan_to_size` chooses per
  tensor instead).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConversionError
from . import ggml_quant

# --type name -> llama.cpp's enum llama_ftype (llama.h).
FTYPES: dict[str, int] = {
    "F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9,
    "Q2_K": 10, "Q3_K_S": 11, "Q3_K_M": 12, "Q3_K_L": 13, "Q4_K_S": 14, "Q4_K_M": 15,
    "Q5_K_S": 16, "Q5_K_M": 17, "Q6_K": 18, "IQ2_XXS": 19, "IQ2_XS": 20, "Q2_K_S": 21,
    "IQ3_XS": 22, "IQ3_XXS": 23, "IQ1_S": 24, "IQ4_NL": 25, "IQ3_S": 26, "IQ3_M": 27,
    "IQ2_S": 28, "IQ2_M": 29, "IQ4_XS": 30, "IQ1_M": 31, "BF16": 32, "TQ1_0": 36, "TQ2_0": 37,
}

# The mix's default tensor type (llama_ftype_get_default_type).
DEFAULT_TYPE: dict[str, str] = {
    "F32": "F32", "F16": "F16", "BF16": "BF16", "Q4_0": "Q4_0", "Q4_1": "Q4_1", "Q5_0": "Q5_0", "Q5_1": "Q5_1",
    "Q8_0": "Q8_0", "Q2_K": "Q2_K", "Q2_K_S": "Q2_K", "IQ3_XS": "IQ3_S", "Q3_K_S": "Q3_K", "Q3_K_M": "Q3_K",
    "Q3_K_L": "Q3_K", "Q4_K_S": "Q4_K", "Q4_K_M": "Q4_K", "Q5_K_S": "Q5_K", "Q5_K_M": "Q5_K", "Q6_K": "Q6_K",
    "TQ1_0": "TQ1_0", "TQ2_0": "TQ2_0", "IQ2_XXS": "IQ2_XXS", "IQ2_XS": "IQ2_XS", "IQ2_S": "IQ2_XS",
    "IQ2_M": "IQ2_S", "IQ3_XXS": "IQ3_XXS", "IQ1_S": "IQ1_S", "IQ1_M": "IQ1_M", "IQ4_NL": "IQ4_NL",
    "IQ4_XS": "IQ4_XS", "IQ3_S": "IQ3_S", "IQ3_M": "IQ3_S",
}

# Fallback when a row does not split into the wanted type's blocks (tensor_type_fallback).
FALLBACK: dict[str, str] = {
    **dict.fromkeys(("IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ4_XS"), "IQ4_NL"),
    **dict.fromkeys(("Q2_K", "Q3_K", "TQ1_0", "TQ2_0"), "Q4_0"),
    "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0",
}

_LOW_IQ = ("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M")
_NOT_QUANTIZED = ("_norm.weight", "ffn_gate_inp.weight", "altup", "laurel", "per_layer_model_proj",
                  "ssm_conv1d", "shortconv.conv.weight", "attn_rel_b.weight", "position_embd", "time_mix_")
_BLOCK = re.compile(r"blk\.(\d+)\.")


@dataclass(frozen=True)
class TensorSpec:
    """What the rules look at: name, numpy shape (rows first) and current ggml type name."""

    name: str
    shape: tuple[int, ...]
    qtype: str

    @property
    def n_per_row(self) -> int:
        return self.shape[-1]


@dataclass(frozen=True)
class ModelShape:
    n_layer: int
    n_head: int
    n_head_kv: int
    n_expert: int = 0
    arch: str = "llama"

    @property
    def n_gqa(self) -> int:
        return self.n_head // self.n_head_kv if self.n_head_kv else 0

    @property
    def is_70b(self) -> bool:  # llama.cpp's LLM_TYPE_70B test for quantization
        return self.arch == "llama" and self.n_layer == 80 and self.n_head != self.n_head_kv


def mix_key(mix: str) -> str:
    key = mix.upper()
    if key not in FTYPES:
        raise ConversionError(f"unknown quantization type {mix!r}", hint=f"choose one of {', '.join(FTYPES)}")
    return key


def storage_order(names: Sequence[str]) -> list[str]:
    """llama.cpp's tensor order in a quantized file: by block number (others first), then by name."""
    def key(name: str) -> tuple[int, str]:
        m = _BLOCK.match(name)
        return (int(m.group(1)) if m else -1, name)
    return sorted(names, key=key)


def allows_quantization(t: TensorSpec) -> bool:
    """tensor_allows_quantization: 2-D (or 3-D) weights, but not norms and a few small tables."""
    return (len(t.shape) >= 2 and t.name.endswith("weight")
            and not any(part in t.name for part in _NOT_QUANTIZED))


def category(name: str) -> str:
    if name == "output.weight":
        return "output"
    if name in ("token_embd.weight", "per_layer_token_embd.weight"):
        return "token_embd"
    for part, cat in (("attn_qkv.weight", "attn_v"), ("attn_kv_b.weight", "attn_v"), ("attn_v.weight", "attn_v"),
                      ("attn_k.weight", "attn_k"), ("attn_q.weight", "attn_q"),
                      ("attn_output.weight", "attn_output"), ("ffn_up", "ffn_up"), ("ffn_gate", "ffn_gate"),
                      ("ffn_down", "ffn_down")):
        if part in name:
            return "attn_qkv" if part == "attn_qkv.weight" else cat
    return "other"


def fallback(qtype: str, n_per_row: int) -> str:
    """The type a row of `n_per_row` really gets when `qtype` is wanted (tensor_type_fallback)."""
    if n_per_row % ggml_quant.block_size(qtype) == 0:
        return qtype
    got = FALLBACK.get(qtype, qtype)
    return got if n_per_row % ggml_quant.block_size(got) == 0 else "F16"


def _more_bits(i: int, n: int) -> bool:
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


class _Counters:
    def __init__(self) -> None:
        self.attn_v = self.ffn_down = self.ffn_gate = self.ffn_up = 0


def _mix_type(t: TensorSpec, new: str, mix: str, m: ModelShape, c: _Counters, n_attn_v: int, tied: bool,
              has_importance: bool) -> str:
    """llama_tensor_get_type_impl for a dense (no experts) model."""
    cat = category(t.name)
    if cat == "output" or (tied and cat == "token_embd"):
        if t.n_per_row % ggml_quant.block_size(new) != 0:
            return "Q8_0"
        if mix in ("IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M"):
            return "Q5_K"
        return new if new == "Q8_0" else "Q6_K"
    if cat == "token_embd":
        if mix in ("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ1_M"):
            return "Q2_K"
        if mix in ("IQ2_S", "IQ2_M", "IQ3_XXS"):
            return "IQ3_S"
        if mix in ("TQ1_0", "TQ2_0"):
            return "Q4_K"
        return new
    if mix in _LOW_IQ:
        if cat in ("attn_v", "attn_qkv"):
            new = "Q4_K" if m.n_gqa >= 4 else ("IQ3_S" if mix in ("IQ2_S", "IQ2_M") else "Q2_K")
            c.attn_v += 1
        elif cat == "ffn_down":
            if c.ffn_down < m.n_layer // 8:
                new = "IQ3_S" if mix in ("IQ2_S", "IQ2_M") else "Q2_K"
            c.ffn_down += 1
        elif cat == "attn_output":
            if mix in ("IQ1_S", "IQ1_M"):
                new = "IQ2_XXS"
            elif mix in ("IQ2_S", "IQ2_M"):
                new = "IQ3_S"
        return new
    if cat in ("attn_v", "attn_qkv"):
        i = c.attn_v
        if mix == "Q2_K":
            new = "Q4_K" if m.n_gqa >= 4 else "Q3_K"
        elif mix == "Q2_K_S" and m.n_gqa >= 4:
            new = "Q4_K"
        elif mix == "IQ3_XXS":
            new = "Q4_K" if m.n_gqa >= 4 else ("IQ3_S" if not has_importance else "IQ3_XXS")
        elif mix in ("IQ3_XS", "IQ3_S") and m.n_gqa >= 4:
            new = "Q4_K"
        elif mix == "IQ3_M":
            new = "Q4_K"
        elif mix == "Q3_K_M":
            new = "Q5_K" if i < 2 else "Q4_K"
        elif mix == "Q3_K_L":
            new = "Q5_K"
        elif mix in ("IQ4_NL", "IQ4_XS") and m.n_gqa >= 4:
            new = "Q5_K"
        elif mix in ("Q4_K_M", "Q5_K_M") and _more_bits(i, n_attn_v):
            new = "Q6_K"
        elif mix == "Q4_K_S" and i < 4:
            new = "Q5_K"
        if m.is_70b and new in ("Q3_K", "Q4_K"):
            new = "Q5_K"
        c.attn_v += 1
        return new
    if cat == "attn_k":
        return "IQ3_XXS" if mix == "IQ3_XS" else "IQ2_S" if mix == "IQ3_XXS" else new
    if cat == "attn_q":
        return "IQ3_XXS" if mix == "IQ3_XS" else "IQ2_S" if mix == "IQ3_XXS" else new
    if cat == "ffn_down":
        i, n = c.ffn_down, m.n_layer
        if mix == "Q2_K":
            new = "Q3_K"
        elif mix == "Q2_K_S":
            if i < n // 8:
                new = "Q4_K"
        elif mix == "IQ3_XXS" and not has_importance:
            new = "Q4_K" if i < n // 8 else "Q3_K"
        elif mix == "Q3_K_M":
            new = "Q5_K" if i < n // 16 else "Q4_K"  # llama.cpp: Q3_K only for Falcon
        elif mix == "IQ3_M" and i < n // 8:
            new = "Q4_K"
        elif mix == "Q3_K_L":
            new = "Q5_K"
        elif mix == "Q4_K_M":
            if _more_bits(i, n):
                new = "Q6_K"
        elif i < n // 8 and mix in ("IQ4_NL", "IQ4_XS") and not has_importance:
            new = "Q5_K"
        elif mix == "Q5_K_M" and _more_bits(i, n):
            new = "Q6_K"
        elif mix == "Q4_K_S" and i < n // 8:
            new = "Q5_K"
        elif mix in ("Q4_0", "Q5_0") and has_importance and i < n // 8:
            new = "Q4_1" if mix == "Q4_0" else "Q5_1"
        c.ffn_down += 1
        return new
    if cat == "attn_output":
        return {"Q2_K": "Q3_K", "IQ3_XXS": "IQ3_S", "Q3_K_M": "Q4_K", "Q3_K_L": "Q5_K", "IQ3_M": "Q4_K"}.get(mix, new)
    if cat == "attn_qkv":
        return new
    if cat in ("ffn_gate", "ffn_up"):
        i = c.ffn_gate if cat == "ffn_gate" else c.ffn_up
        if mix == "IQ3_XS" and m.n_layer // 8 <= i < 7 * m.n_layer // 8:
            new = "IQ3_XXS"
        if cat == "ffn_gate":
            c.ffn_gate += 1
        else:
            c.ffn_up += 1
        return new
    return new


def plan_mix(tensors: Sequence[TensorSpec], mix: str, model: ModelShape, *,
             has_importance: bool = False, fit_rows: bool = True) -> dict[str, str]:
    """Tensor name -> ggml type name that `llama_model_quantize` gives it for `mix`.

    With `fit_rows=False`, the type the rules want before the row-length fallback.
    """
    key = mix_key(mix)
    if model.n_expert > 1:
        raise ConversionError(f"{model.n_expert}-expert models are not supported by our quantizer",
                              hint="quantize mixture-of-experts models with llama.cpp's llama-quantize")
    by_name = {t.name: t for t in tensors}
    order = storage_order(list(by_name))
    tied = "output.weight" not in by_name
    n_attn_v = sum(1 for n in order if category(n) in ("attn_v", "attn_qkv"))
    default = DEFAULT_TYPE[key]
    counters = _Counters()
    plan: dict[str, str] = {}
    for name in order:
        t = by_name[name]
        if not allows_quantization(t):
            plan[name] = t.qtype
            continue
        new = default
        if default not in ("F32", "F16", "BF16"):
            new = _mix_type(t, default, key, model, counters, n_attn_v, tied, has_importance)
            if fit_rows:
                new = fallback(new, t.n_per_row)
        plan[name] = new
    return plan


def requires_importance(name: str, qtype: str, mix: str | None = None) -> bool:
    """tensor_requires_imatrix: the very-low-bit types, never for the embeddings or the output matrix."""
    if name in ("token_embd.weight", "per_layer_token_embd.weight", "output.weight"):
        return False
    if qtype == "Q2_K":
        return mix is not None and mix.upper() == "Q2_K_S"
    return qtype in ("IQ3_XXS", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ1_M", "IQ1_S")


def needs_importance(mix: str) -> bool:
    """Whether llama.cpp's `mix` puts a type that needs importance on some block tensor."""
    key = mix_key(mix)
    if key == "Q2_K_S":
        return True
    default = DEFAULT_TYPE[key]
    if default in ("IQ3_XXS", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ1_M", "IQ1_S"):
        return True
    return key == "IQ3_XS"  # attn_q/attn_k go to IQ3_XXS
