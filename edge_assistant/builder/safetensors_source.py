"""Lazy access to a Hugging Face model's safetensors shards, one tensor at a time.

Conversion streams: shapes come from the shard headers without reading data, and
each tensor is read (memory-mapped) only when it is written, so peak memory is
one tensor plus the interpreter, never the whole model. Pickle checkpoints
(`pytorch_model.bin`) are refused: unpickling runs arbitrary code.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open

from ..errors import ConversionError


def safetensors_files(folder: Path, *, what: str = "model") -> list[Path]:
    """The safetensors shards of ``folder`` (following an index if present), or a clear refusal."""
    folder = Path(folder)
    index = next(iter(sorted(folder.glob("*.safetensors.index.json"))), None)
    if index is not None:
        weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
        files = [folder / name for name in dict.fromkeys(weight_map.values())]
    else:
        files = sorted(folder.glob("*.safetensors"))
    if files:
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise ConversionError(f"{folder} is missing shard(s) {', '.join(missing)}",
                                  hint="copy the complete model folder")
        return files
    pickles = sorted(p.name for p in folder.glob("*.bin")) + sorted(p.name for p in folder.glob("*.pt"))
    if pickles:
        raise ConversionError(
            f"{folder} holds only pickle weights ({', '.join(pickles)}), which are never loaded (unsafe)",
            hint=f"re-save the {what} with save_pretrained(..., safe_serialization=True) to get .safetensors")
    raise ConversionError(f"{folder} has no .safetensors weights", hint=f"save the {what} with save_pretrained")


class SafetensorsSource:
    """Tensor names, shapes and (on demand) float32 data across all shards of a folder."""

    def __init__(self, folder: Path, *, what: str = "model") -> None:
        self._stack = ExitStack()
        self._where: dict[str, Any] = {}
        self.files = safetensors_files(folder, what=what)
        for path in self.files:
            handle = self._stack.enter_context(safe_open(str(path), framework="pt"))
            for name in handle.keys():
                self._where[name] = handle

    def names(self) -> list[str]:
        return list(self._where)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._where[name].get_slice(name).get_shape())

    def load(self, name: str) -> np.ndarray:
        """The tensor as float32 numpy (bf16/f16 widened exactly)."""
        tensor = self._where[name].get_tensor(name)
        return tensor.to(torch.float32).numpy()

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> SafetensorsSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
