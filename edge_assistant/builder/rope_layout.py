"""How rotary position embeddings are laid out differently in HF and llama.cpp.

Hugging Face's Llama rotates the two *halves* of each head (``rotate_half``):
dimension i pairs with i + head_dim/2. llama.cpp's `llama` architecture uses the
original interleaved layout: dimension 2i pairs with 2i+1. The same attention
results come out if the rows of W_q and W_k (the output features) are reordered
within each head so that row i goes to 2i and row i + head_dim/2 to 2i+1. The
same reordering applies to anything that produces those rows: a LoRA B matrix.
"""

from __future__ import annotations

import math

import numpy as np

from .hparams import LlamaHParams


def interleave_rope_rows(weight: np.ndarray, n_head: int) -> np.ndarray:
    """Reorder the rows of a q/k projection (shape [n_head*head_dim, ...]) from halves to pairs."""
    rows = weight.shape[0]
    if rows % (2 * n_head):
        raise ValueError(f"{rows} rows cannot be split into {n_head} heads of even size")
    half = rows // n_head // 2
    # [head, half(2), i, ...] -> [head, i, half(2), ...]: row (h, s, i) goes to position (h, i, s)
    grouped = weight.reshape(n_head, 2, half, *weight.shape[1:])
    return np.ascontiguousarray(grouped.swapaxes(1, 2)).reshape(weight.shape)


def llama3_rope_factors(hp: LlamaHParams) -> np.ndarray:
    """Per-frequency divisors llama.cpp applies to theta (the ``rope_freqs`` tensor).

    Derived from transformers' llama3 rope: frequencies with a wavelength shorter
    than original_context/high_freq_factor are kept, those longer than
    original_context/low_freq_factor are divided by ``factor``, and those between
    are blended smoothly. llama.cpp divides each frequency by the stored factor, so
    the factor is the ratio original/scaled frequency.
    """
    scaling = hp.rope_scaling
    assert scaling is not None and scaling.rope_type == "llama3"
    dims = hp.head_dim
    inv_freq = 1.0 / (hp.rope_theta ** (np.arange(0, dims, 2, dtype=np.float64) / dims))
    low_wavelen = scaling.original_context / scaling.low_freq_factor
    high_wavelen = scaling.original_context / scaling.high_freq_factor
    factors = []
    for freq in inv_freq:
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            factors.append(1.0)
        elif wavelen > low_wavelen:
            factors.append(scaling.factor)
        else:
            smooth = ((scaling.original_context / wavelen - scaling.low_freq_factor)
                      / (scaling.high_freq_factor - scaling.low_freq_factor))
            factors.append(1.0 / ((1.0 - smooth) / scaling.factor + smooth))
    return np.asarray(factors, dtype=np.float32)
