"""Hugging Face Llama tensor names -> llama.cpp GGUF tensor names, as data.

Each row: a regular expression over the HF name (layer index captured), the GGUF
name template, and the row layout fix the tensor needs. The LoRA converter uses
the same table, so an adapter's tensors get exactly the base's names and layout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class RowLayout(Enum):
    AS_IS = "as-is"
    ROPE_Q = "rope-q"    # interleave rope halves per query head (see rope_layout)
    ROPE_K = "rope-k"    # the same per key/value head (grouped-query attention has fewer)


@dataclass(frozen=True)
class TensorRule:
    pattern: re.Pattern[str]
    gguf: str
    layout: RowLayout = RowLayout.AS_IS


def _rule(pattern: str, gguf: str, layout: RowLayout = RowLayout.AS_IS) -> TensorRule:
    return TensorRule(re.compile(pattern), gguf, layout)


LLAMA_TENSORS: tuple[TensorRule, ...] = (
    # token embeddings [vocab, n_embd]; also the output matrix when embeddings are tied
    _rule(r"model\.embed_tokens\.weight", "token_embd.weight"),
    # final RMSNorm before the output projection
    _rule(r"model\.norm\.weight", "output_norm.weight"),
    # untied output projection [vocab, n_embd]; absent (or skipped) when tied
    _rule(r"lm_head\.weight", "output.weight"),
    # RMSNorm before attention
    _rule(r"model\.layers\.(\d+)\.input_layernorm\.weight", "blk.{}.attn_norm.weight"),
    # query projection: rows reordered for llama.cpp's interleaved rope
    _rule(r"model\.layers\.(\d+)\.self_attn\.q_proj\.weight", "blk.{}.attn_q.weight", RowLayout.ROPE_Q),
    # key projection: same reordering, over the key/value heads
    _rule(r"model\.layers\.(\d+)\.self_attn\.k_proj\.weight", "blk.{}.attn_k.weight", RowLayout.ROPE_K),
    # value projection: no rope, no reordering
    _rule(r"model\.layers\.(\d+)\.self_attn\.v_proj\.weight", "blk.{}.attn_v.weight"),
    # attention output projection: its input side is the value layout, untouched
    _rule(r"model\.layers\.(\d+)\.self_attn\.o_proj\.weight", "blk.{}.attn_output.weight"),
    # RMSNorm before the MLP
    _rule(r"model\.layers\.(\d+)\.post_attention_layernorm\.weight", "blk.{}.ffn_norm.weight"),
    # SwiGLU gate
    _rule(r"model\.layers\.(\d+)\.mlp\.gate_proj\.weight", "blk.{}.ffn_gate.weight"),
    # SwiGLU up projection
    _rule(r"model\.layers\.(\d+)\.mlp\.up_proj\.weight", "blk.{}.ffn_up.weight"),
    # SwiGLU down projection
    _rule(r"model\.layers\.(\d+)\.mlp\.down_proj\.weight", "blk.{}.ffn_down.weight"),
)

# HF tensors that carry no weights llama.cpp needs (recomputed buffers in old checkpoints).
IGNORED = re.compile(r"model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq")


def gguf_name(hf_name: str) -> tuple[str, RowLayout] | None:
    """The GGUF name and row layout for ``hf_name``, or None when no row matches."""
    for rule in LLAMA_TENSORS:
        match = rule.pattern.fullmatch(hf_name)
        if match:
            return rule.gguf.format(*match.groups()), rule.layout
    return None
