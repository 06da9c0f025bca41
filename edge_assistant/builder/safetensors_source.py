"""Lazy access to a Hugging Face model's safetensors shards, one tensor at a time.

Conversion streams: shapes come from the shard headers without reading data, and
each tensor is read only when it is written, so peak memory is
one tensor plus the interpreter, never the whole model. Pickle checkpoints
(`pytorch_model.bin`) are refused: unpickling runs arbitrary code.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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


# safetensors dtype -> (numpy dtype of the stored bytes, how to widen to float32)
_DTYPES = {
    "F32": (np.float32, None),
    "F16": (np.float16, None),
    "BF16": (np.uint16, "bf16"),  # bfloat16 is the top half of a float32
    "F64": (np.float64, None),
}


@dataclass(frozen=True)
class _Entry:
    path: Path
    dtype: str
    shape: tuple[int, ...]
    start: int   # absolute offset of the data in the file
    nbytes: int


class SafetensorsSource:
    """Tensor names, shapes and (on demand) float32 data across all shards of a folder.

    Reads each tensor with a plain positioned read instead of memory-mapping the
    shard: with a mapping, every page touched stays in the process's resident set
    until the mapping closes, so converting a model would end up "holding" the
    whole file. A read keeps only the tensor being converted.
    """

    def __init__(self, folder: Path, *, what: str = "model") -> None:
        self.files = safetensors_files(folder, what=what)
        self._entries: dict[str, _Entry] = {}
        for path in self.files:
            self._index(path)

    def _index(self, path: Path) -> None:
        with open(path, "rb") as handle:
            raw = handle.read(8)
            if len(raw) != 8:
                raise ConversionError(f"{path} is truncated", hint="re-save the model")
            (length,) = struct.unpack("<Q", raw)
            if length > 100 << 20:
                raise ConversionError(f"{path} has a corrupt safetensors header", hint="re-save the model")
            try:
                header = json.loads(handle.read(length))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ConversionError(f"{path} has a corrupt safetensors header", hint="re-save the model") from exc
        size = path.stat().st_size
        for name, info in header.items():
            if name == "__metadata__":
                continue
            begin, end = info["data_offsets"]
            entry = _Entry(path, info["dtype"], tuple(info["shape"]), 8 + length + begin, end - begin)
            if entry.start + entry.nbytes > size:
                raise ConversionError(f"{path} is truncated (tensor {name} runs past the end)",
                                      hint="copy the complete file")
            self._entries[name] = entry

    def names(self) -> list[str]:
        return list(self._entries)

    def shape(self, name: str) -> tuple[int, ...]:
        return self._entries[name].shape

    def load(self, name: str) -> np.ndarray:
        """The tensor as float32 numpy (f16/bf16 widened exactly)."""
        return self.load_rows(name, 0, self._entries[name].shape[0] if self._entries[name].shape else 1)

    def row_bytes(self, name: str) -> int:
        """Bytes of one float32 row (the tensor's first axis) once loaded."""
        shape = self._entries[name].shape
        return 4 * int(np.prod(shape[1:])) if shape else 4

    def load_rows(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` (first axis) of the tensor as float32, reading only their bytes."""
        entry = self._entries[name]
        if entry.dtype not in _DTYPES:
            raise ConversionError(f"{name} in {entry.path} has dtype {entry.dtype}",
                                  hint="only float checkpoints (F32, F16, BF16) can be converted")
        stored, widen = _DTYPES[entry.dtype]
        itemsize = np.dtype(stored).itemsize
        row = int(np.prod(entry.shape[1:])) if entry.shape else 1
        data = np.empty((stop - start) * row, dtype=stored)
        with open(entry.path, "rb") as handle:
            handle.seek(entry.start + start * row * itemsize)
            if handle.readinto(memoryview(data).cast("B")) != data.nbytes:
                raise ConversionError(f"{entry.path} is truncated", hint="copy the complete file")
        if widen == "bf16":
            wide = data.astype(np.uint32)
            del data
            wide <<= 16
            data = wide.view(np.float32)
        shape = (stop - start, *entry.shape[1:]) if entry.shape else ()
        return data.astype(np.float32, copy=False).reshape(shape)

    def close(self) -> None:
        """Nothing stays open between reads; kept so callers can use a with-block."""

    def __enter__(self) -> SafetensorsSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
