"""Importance statistics: per input channel, the mean squared activation every linear layer sees.

This is what llama.cpp's `llama-imatrix` measures, collected in PyTorch instead: one
vector per decoder-block linear (q, k, v, o, gate, up, down) and one for the output
matrix, keyed by its GGUF tensor name, so `quantizer.quantize_with_plan` can weight each column's rounding
error by how much signal flows through it. AWQ collects it in its own calibration
pass (`apply_awq(..., importance=...)`), on the activations of the final scaled model;
`collect_importance` is the stand-alone pass for a model without AWQ.

The output matrix gets one too: the final normed hidden state it multiplies, under
`output.weight`, or under `token_embd.weight` when the embeddings are tied and that one
matrix is both the input lookup and the output projection. The lookup side has no
activations to weight by, and the output side is where its rounding reaches the logits
directly (measured in docs/compression.md).

Stored as a small GGUF (`general.type = "imatrix"`, one `<name>.in_sum2` and
`<name>.counts` tensor per weight) in llama.cpp's own imatrix format, so the
same numbers can be handed to `llama-quantize --imatrix`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..durable import atomic_file
from ..errors import ConversionError
from .tensor_names import gguf_name


class Importance:
    """Running sums of x² per input channel and token counts, per GGUF weight name."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, name: str, x: torch.Tensor) -> None:
        flat = x.detach().reshape(-1, x.shape[-1]).double()
        total = flat.pow(2).sum(dim=0)
        if name in self.sums:
            self.sums[name] += total
        else:
            self.sums[name] = total
        self.counts[name] = self.counts.get(name, 0) + flat.shape[0]

    def hook(self, module: torch.nn.Module, name: str) -> Any:
        """Register a forward hook on `module` that adds its input under `name`; returns the handle."""
        return module.register_forward_hook(lambda _m, args, _out: self.add(name, args[0]))

    def vectors(self) -> dict[str, np.ndarray]:
        """GGUF weight name -> mean squared activation per input channel, float32."""
        return {n: (s / max(1, self.counts[n])).float().numpy() for n, s in sorted(self.sums.items())}

    def __len__(self) -> int:
        return len(self.sums)


def block_linears(layer: Any, index: int) -> list[tuple[str, torch.nn.Module]]:
    """(GGUF name, module) for every linear of decoder block `index`."""
    found = []
    for sub, module in layer.named_modules():
        if isinstance(module, torch.nn.Linear):
            mapped = gguf_name(f"model.layers.{index}.{sub}.weight")
            if mapped is not None:
                found.append((mapped[0], module))
    return found


def output_weight(model: Any) -> str:
    """GGUF name of the matrix the final hidden state multiplies: token_embd when tied, else output."""
    tied = bool(getattr(getattr(model, "config", None), "tie_word_embeddings", False))
    return "token_embd.weight" if tied else "output.weight"


def observe_output(importance: Importance, model: Any, hidden: torch.Tensor) -> None:
    """Add the output matrix's input (the last block's output through the final norm) to `importance`."""
    importance.add(output_weight(model), model.model.norm(hidden))


def observe_block(importance: Importance, layer: Any, index: int, run: Any) -> Any:
    """Call `run()` (one forward of block `index`) with every linear's input added to `importance`."""
    handles = [importance.hook(module, name) for name, module in block_linears(layer, index)]
    try:
        return run()
    finally:
        for h in handles:
            h.remove()


def collect_importance(model: Any, windows: torch.Tensor) -> dict[str, np.ndarray]:
    """One forward pass over `windows` ([n, seq_len] token ids) with hooks on every linear, output matrix included."""
    stats = Importance()
    handles = [stats.hook(module, name)
               for i, layer in enumerate(model.model.layers) for name, module in block_linears(layer, i)]
    handles.append(stats.hook(model.lm_head, output_weight(model)))
    try:
        with torch.no_grad():
            for row in windows:
                model(input_ids=row.unsqueeze(0), use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return stats.vectors()


def chat_calibration_texts(tokenizer: Any, texts: Sequence[str], *, chunk_chars: int = 1500) -> list[str]:
    """Calibration text the way the model is used: each passage as a user turn answered by the assistant.

    Passages (split on blank lines, up to `chunk_chars` each) alternate between the
    user's and the assistant's side of a chat rendered with the tokenizer's own chat
    template; without a template the text is returned as it is.
    """
    if not getattr(tokenizer, "chat_template", None):
        return [t for t in texts if t.strip()]
    passages: list[str] = []
    for text in texts:
        current = ""
        for para in text.split("\n\n"):
            if current and len(current) + len(para) > chunk_chars:
                passages.append(current)
                current = ""
            current = f"{current}\n\n{para}" if current else para
        if current.strip():
            passages.append(current)
    rendered = []
    for i in range(0, len(passages) - 1, 2):
        messages = [{"role": "user", "content": passages[i].strip()},
                    {"role": "assistant", "content": passages[i + 1].strip()}]
        rendered.append(tokenizer.apply_chat_template(messages, tokenize=False))
    if len(passages) % 2:
        rendered.append(tokenizer.apply_chat_template([{"role": "user", "content": passages[-1].strip()}],
                                                      tokenize=False, add_generation_prompt=True))
    return rendered


def write_imatrix(path: Path | str, vectors: Mapping[str, np.ndarray], *, dataset: str = "calibration",
                  chunk_size: int = 512, chunks: int = 1) -> Path:
    """llama.cpp's GGUF imatrix file: `<name>.in_sum2` = the values, `<name>.counts` = 1 (so loaded as is)."""
    from gguf import GGUFWriter

    path = Path(path)
    with atomic_file(path) as temp:
        writer = GGUFWriter(temp, arch="")
        writer.kv_data[0].clear()
        writer.add_string("general.type", "imatrix")
        writer.add_array("imatrix.datasets", [dataset])
        writer.add_uint32("imatrix.chunk_count", chunks)
        writer.add_uint32("imatrix.chunk_size", chunk_size)
        for name in sorted(vectors):
            values = np.asarray(vectors[name], dtype=np.float32).reshape(1, -1)
            writer.add_tensor(f"{name}.in_sum2", values)
            writer.add_tensor(f"{name}.counts", np.ones((1, 1), dtype=np.float32))
        writer.write_header_to_file(temp)
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return path


def read_imatrix(path: Path | str) -> dict[str, np.ndarray]:
    """Importance vectors from a llama.cpp GGUF imatrix file (in_sum2 / counts)."""
    from ..errors import BundleError
    from .gguf_index import read_tensor_index

    path = Path(path)
    try:
        tensors = {t.name: np.asarray(t.read(path), dtype=np.float32) for t in read_tensor_index(path)}
    except (BundleError, ValueError) as exc:
        raise ConversionError(f"cannot read the imatrix file {path}: {exc}",
                              hint="pass a GGUF imatrix written by llama-imatrix or `build compress --calib`") from exc
    out = {}
    for name, sums in tensors.items():
        if name.endswith(".in_sum2"):
            base = name[: -len(".in_sum2")]
            counts = tensors.get(f"{base}.counts")
            count = np.float32(counts.reshape(-1)[0]) if counts is not None else np.float32(1)
            out[base] = (sums.reshape(-1) / count).astype(np.float32)
    return out


def weighted_error(w: np.ndarray, q: np.ndarray, importance: np.ndarray) -> float:
    """Σ importance_j · (w_ij − q_ij)²: the output error a quantized weight adds, to first order."""
    return float(((np.asarray(w, np.float64) - q) ** 2 * np.asarray(importance, np.float64)).sum())

