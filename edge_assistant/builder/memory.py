"""Training memory: whether one micro-batch's activations fit, which decides gradient checkpointing.

Checkpointing trades ~30% more compute for activations that shrink from every
layer's intermediates to one hidden state per layer. It is only worth paying
when memory demands it, so ``gradient_checkpointing = "auto"`` (the default)
estimates the activations of the largest micro-batch (batch_size x max_seq_len
tokens) without checkpointing and turns it on only when they would not fit in
80% of the device's free memory after the model is loaded.

The estimate (bytes per token, bf16/fp32 activations, SDPA so no seq^2 term):
each decoder layer keeps its inputs to the norms, the q/k/v/o and the three MLP
projections, the attention output and the SwiGLU intermediates, about
``10 * hidden + 4 * intermediate`` values; the output layer keeps the logits
and their float32 softmax and gradient, ``vocab * (dtype + 8)`` bytes. With
checkpointing, one hidden state per layer plus one layer being recomputed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_FIT = 0.8


@dataclass(frozen=True)
class CheckpointingChoice:
    enabled: bool
    reason: str


def activation_bytes(config: Any, tokens: int, dtype_bytes: int, *, checkpointing: bool) -> int:
    """Estimated activation memory of one forward/backward over ``tokens`` tokens."""
    h, inter, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    per_layer = (10 * h + 4 * inter) * dtype_bytes
    logits = config.vocab_size * (dtype_bytes + 8)
    if checkpointing:
        return tokens * (layers * h * dtype_bytes + per_layer + logits)
    return tokens * (layers * per_layer + logits)


def free_memory(device: Any) -> int:
    """Free bytes on ``device``: the GPU's free memory, or the host's MemAvailable."""
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    text = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").is_file() else ""
    found = re.search(r"MemAvailable:\s+(\d+) kB", text)
    return int(found.group(1)) * 1024 if found else 1 << 62


def choose_checkpointing(setting: bool | str, config: Any, tokens: int, dtype_bytes: int,
                         free: int) -> CheckpointingChoice:
    """``setting`` true/false is obeyed; "auto" enables checkpointing only when activations would not fit."""
    if setting is True or setting is False:
        return CheckpointingChoice(bool(setting), "set in the recipe")
    need = activation_bytes(config, tokens, dtype_bytes, checkpointing=False)
    fits = need <= _FIT * free
    return CheckpointingChoice(not fits, f"activations ~{need / 2**30:.1f} GiB for {tokens} tokens, "
                                         f"{free / 2**30:.1f} GiB free: {'fits' if fits else 'does not fit'}")
