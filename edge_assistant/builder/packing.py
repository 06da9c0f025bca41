"""Sequence packing: several short training rows in one sequence, each attending only to itself.

Chat rows are mostly far shorter than ``max_seq_len``; padded batches spend
most of their compute on padding. A packed sequence concatenates rows and gives
each row position ids restarting at 0. transformers reads those resets as row
boundaries: with SDPA or eager attention it builds a block-diagonal causal mask
(``masking_utils.find_packed_sequence_indices``, used when no attention_mask is
given), with flash-attention 2 it runs the variable-length kernel. The first
token of each row carries no label, so no row learns to predict the next row's
first token from its own last one. The loss therefore equals unpacked training
on the same rows (tests/builder/test_training_speed.py checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .dataset import IGNORE_INDEX, Example


@dataclass
class PackedExample:
    input_ids: list[int]
    labels: list[int]
    position_ids: list[int]
    rows: int


def pack_examples(examples: Sequence[Example], max_len: int) -> list[PackedExample]:
    """Rows in their given order, greedily filled into sequences of at most ``max_len`` tokens."""
    packed: list[PackedExample] = []
    current = PackedExample([], [], [], 0)
    for e in examples:
        ids = e.input_ids[:max_len]
        if current.rows and len(current.input_ids) + len(ids) > max_len:
            packed.append(current)
            current = PackedExample([], [], [], 0)
        current.input_ids += ids
        current.labels += [IGNORE_INDEX] + list(e.labels[1:len(ids)])
        current.position_ids += list(range(len(ids)))
        current.rows += 1
    if current.rows:
        packed.append(current)
    return packed


def collate_packed(examples: Sequence[PackedExample], pad_id: int) -> dict[str, object]:
    """A batch of packed sequences: ids, labels and per-row positions, no attention_mask.

    Padding at the end forms one more "row" (its positions restart at 0) whose labels are all
    ignored; causal attention already keeps real tokens from seeing it.
    """
    import torch

    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    positions = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        positions[row, :n] = torch.tensor(e.position_ids)
        positions[row, n:] = torch.arange(width - n)
    return {"input_ids": ids, "labels": labels, "position_ids": positions}
