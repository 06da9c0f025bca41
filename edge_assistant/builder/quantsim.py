"""Simulated GGUF quantization of a weight matrix, in torch.

AWQ searches scales that minimise the error the *real* quantizer will make, so the
simulation must round the way ggml does. For the block-32 types (Q4_0, Q4_1, Q5_0,
Q5_1, Q8_0) this module reproduces ggml's reference quantizers (`quantize_row_*_ref`,
which llama.cpp's `llama_model_quantize` uses when no importance matrix is given):
same scale formula, same float32 inverse scale, same truncating casts, the scale
(and min) stored as float16. The input is first rounded to float16, because the
quantizer reads the f16 GGUF written by the converter.

k-quants (Q2_K..Q6_K) pack 256-element super-blocks with 6-bit quantized sub-block
scales found by an iterative search; simulating them exactly would cost more than
the search it serves. They are approximated by their sub-block shape: Q4_K/Q5_K as
affine 4/5-bit rounding per 32 (like Q4_1/Q5_1 with float sub-block scales), Q6_K and
Q3_K as symmetric 6/3-bit per 16, Q2_K as affine 2-bit per 16. A row whose length
is not a multiple of 256 cannot hold k-quant super-blocks: llama.cpp falls back to
another type for that tensor, and so does this simulation (table below).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import UsageError

QK = 32  # ggml's block size for the legacy types
QK_K = 256  # k-quant super-block size


@dataclass(frozen=True)
class BlockFormat:
    """How one GGUF type rounds a block: `bits`, symmetric or affine, block length."""

    bits: int
    affine: bool  # True: q*d + m (min stored); False: (q - zero)*d
    block: int
    exact: bool  # True when this matches ggml bit for bit


# GGUF type -> block format. A comment per row says where the format comes from.
FORMATS: dict[str, BlockFormat] = {
    "Q4_0": BlockFormat(4, False, QK, True),  # d = max/-8, q = min(15, trunc(x/d + 8.5))
    "Q4_1": BlockFormat(4, True, QK, True),  # d = (max-min)/15, q = min(15, trunc((x-min)/d + 0.5))
    "Q5_0": BlockFormat(5, False, QK, True),  # d = max/-16, q = min(31, trunc(x/d + 16.5))
    "Q5_1": BlockFormat(5, True, QK, True),  # d = (max-min)/31, q = trunc((x-min)/d + 0.5)
    "Q8_0": BlockFormat(8, False, QK, True),  # d = amax/127, q = round(x/d)
    "Q6_K": BlockFormat(6, False, 16, False),  # 16 sub-blocks of 16, 8-bit scales
    "Q5_K": BlockFormat(5, True, 32, False),  # 8 sub-blocks of 32, 6-bit scales and mins
    "Q4_K": BlockFormat(4, True, 32, False),  # 8 sub-blocks of 32, 6-bit scales and mins
    "Q3_K": BlockFormat(3, False, 16, False),  # 16 sub-blocks of 16, 6-bit scales
    "Q2_K": BlockFormat(2, True, 16, False),  # 16 sub-blocks of 16, 4-bit scales and mins
}

# llama.cpp's file types (what `quantize --type` accepts) -> the type most tensors get.
FILE_TYPES: dict[str, str] = {
    "Q8_0": "Q8_0", "Q5_1": "Q5_1", "Q5_0": "Q5_0", "Q4_1": "Q4_1", "Q4_0": "Q4_0",
    "Q6_K": "Q6_K", "Q5_K_M": "Q5_K", "Q5_K_S": "Q5_K", "Q4_K_M": "Q4_K", "Q4_K_S": "Q4_K",
    "Q3_K_M": "Q3_K", "Q3_K_S": "Q3_K", "Q3_K_L": "Q3_K", "Q2_K": "Q2_K",
}

# llama.cpp's fallback when a row is not a multiple of 256 (llama_tensor_get_type).
K_FALLBACK: dict[str, str] = {
    "Q2_K": "Q4_0",  # IQ4_NL in llama.cpp: a 4-bit non-linear block-32 type; Q4_0 is its closest legacy shape
    "Q3_K": "Q4_0",  # IQ4_NL, as above
    "Q4_K": "Q5_0",
    "Q5_K": "Q5_1",
    "Q6_K": "Q8_0",
}


def tensor_type(file_type: str, row_length: int) -> str:
    """The GGUF type llama.cpp gives a weight with rows of `row_length` under `file_type`."""
    key = file_type.upper()
    if key not in FILE_TYPES:
        raise UsageError(
            f"unknown quantization type {file_type!r}",
            hint=f"choose one of {', '.join(FILE_TYPES)}",
        )
    base = FILE_TYPES[key]
    if base in K_FALLBACK and row_length % QK_K != 0:
        return K_FALLBACK[base]
    return base


def _fp16(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.float16).to(torch.float32)


def _trunc_int(x: torch.Tensor) -> torch.Tensor:
    # C's (int8_t)/(uint8_t) cast of a float truncates toward zero.
    return torch.trunc(x)


def _symmetric(blocks: torch.Tensor, bits: int, exact: bool) -> torch.Tensor:
    if bits == 8:
        amax = blocks.abs().amax(dim=-1, keepdim=True)
        d = amax / 127.0
        inv = torch.where(d != 0, 1.0 / torch.where(d != 0, d, 1.0), 0.0)
        scaled = blocks * inv
        # ggml uses roundf (half away from zero); torch.round rounds half to even.
        q = torch.round(scaled)
        whole = torch.trunc(scaled)
        q = torch.where((scaled - whole).abs() == 0.5, whole + torch.sign(scaled), q)
        return q * _fp16(d)
    half = 1 << (bits - 1)  # 8 for 4-bit, 16 for 5-bit
    top = (1 << bits) - 1
    # The signed value of largest magnitude (first one on ties, like ggml's strict `<`).
    idx = blocks.abs().argmax(dim=-1, keepdim=True)
    vmax = torch.gather(blocks, -1, idx)
    d = vmax / -float(half)
    inv = torch.where(d != 0, 1.0 / torch.where(d != 0, d, 1.0), 0.0)
    if exact:
        q = torch.clamp(_trunc_int(blocks * inv + (half + 0.5)), max=top)
    else:
        q = torch.clamp(torch.round(blocks * inv) + half, 0, top)
    return (q - half) * _fp16(d)


def _affine(blocks: torch.Tensor, bits: int) -> torch.Tensor:
    top = (1 << bits) - 1
    lo = blocks.amin(dim=-1, keepdim=True)
    hi = blocks.amax(dim=-1, keepdim=True)
    d = (hi - lo) / float(top)
    inv = torch.where(d != 0, 1.0 / torch.where(d != 0, d, 1.0), 0.0)
    q = torch.clamp(_trunc_int((blocks - lo) * inv + 0.5), max=top)
    return q * _fp16(d) + _fp16(lo)


def fake_quantize(weight: torch.Tensor, gguf_type: str) -> torch.Tensor:
    """Quantize then dequantize `weight` ([out, in], rows along `in`) as `gguf_type` would.

    Returns a float32 tensor of the same shape (what llama.cpp computes with).
    """
    fmt = FORMATS.get(gguf_type.upper())
    if fmt is None:
        raise UsageError(f"no block format for GGUF type {gguf_type!r}", hint=f"use one of {', '.join(FORMATS)}")
    out_features, in_features = weight.shape
    if in_features % fmt.block != 0:
        raise UsageError(
            f"rows of length {in_features} do not split into blocks of {fmt.block} for {gguf_type}",
            hint="choose a block-32 type (Q4_0, Q5_0, Q8_0) for this model",
        )
    w = _fp16(weight.detach().to(torch.float32))
    blocks = w.reshape(out_features, in_features // fmt.block, fmt.block)
    if fmt.affine:
        deq = _affine(blocks, fmt.bits)
    else:
        deq = _symmetric(blocks, fmt.bits, fmt.exact)
    return deq.reshape(out_features, in_features)
