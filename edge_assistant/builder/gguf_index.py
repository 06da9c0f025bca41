"""Fast index of a GGUF's tensors (name, type, shape, where the bytes are).

`gguf.GGUFReader` builds a numpy view per metadata string, which takes tens of
seconds for a 128k-token vocabulary; reports and shape checks only need the
tensor table, so this reads the header, skips the metadata and parses the table.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

from ..errors import ConversionError

_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # GGUF scalar sizes
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class TensorEntry:
    name: str
    qtype: gguf.GGMLQuantizationType
    shape: tuple[int, ...]   # ggml order (ne0 = row length first)
    offset: int              # absolute file offset of the data

    @property
    def n_elements(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        block, size = gguf.GGML_QUANT_SIZES[self.qtype]
        return self.n_elements // block * size

    def read(self, path: Path) -> np.ndarray:
        """The tensor's raw data (F32/F16 as numbers, in numpy order)."""
        dtype = {gguf.GGMLQuantizationType.F32: np.float32, gguf.GGMLQuantizationType.F16: np.float16}.get(self.qtype)
        if dtype is None:
            raise ValueError(f"{self.name} is {self.qtype.name}; only F32/F16 can be read as numbers")
        data = np.fromfile(path, dtype=dtype, count=self.n_elements, offset=self.offset)
        return data.reshape(tuple(reversed(self.shape)))


_SCALAR_FMT = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


@dataclass(frozen=True)
class MetadataValue:
    """One metadata entry as stored: GGUF value type, value (strings as raw bytes), array item type."""

    vtype: gguf.GGUFValueType
    value: object
    sub_type: gguf.GGUFValueType | None = None


def read_metadata(path: Path, prefix: str = "") -> dict[str, MetadataValue]:
    """Metadata entries whose key starts with ``prefix``, strings kept as raw bytes for verbatim copies."""
    path = Path(path)
    out: dict[str, MetadataValue] = {}
    with open(path, "rb") as handle:
        def unpack(fmt: str) -> object:
            size = struct.calcsize(fmt)
            data = handle.read(size)
            if len(data) != size:
                raise ConversionError(f"{path} is truncated", hint="rebuild or re-download the file")
            return struct.unpack(fmt, data)[0]

        def value(vtype: int) -> object:
            if vtype in _SCALAR_FMT:
                return unpack(_SCALAR_FMT[vtype])
            if vtype == _STRING:
                return handle.read(int(unpack("<Q")))  # type: ignore[call-overload]
            raise ConversionError(f"{path} has an unsupported GGUF value type {vtype}", hint="rebuild the file")

        if handle.read(4) != b"GGUF":
            raise ConversionError(f"{path} is not a GGUF file", hint="pass a .gguf file")
        unpack("<I")
        unpack("<Q")
        n_kv = int(unpack("<Q"))  # type: ignore[call-overload]
        for _ in range(n_kv):
            key = handle.read(int(unpack("<Q"))).decode("utf-8", errors="replace")  # type: ignore[call-overload]
            vtype = int(unpack("<I"))  # type: ignore[call-overload]
            if vtype == _ARRAY:
                item, count = int(unpack("<I")), int(unpack("<Q"))  # type: ignore[call-overload]
                if item in _SCALAR_FMT:
                    # numeric arrays in one read
                    items = np.frombuffer(handle.read(_FIXED[item] * count), dtype=_SCALAR_FMT[item]).tolist()
                else:
                    items = [value(item) for _ in range(count)]
                if key.startswith(prefix):
                    out[key] = MetadataValue(gguf.GGUFValueType.ARRAY, items, gguf.GGUFValueType(item))
            else:
                item_value = value(vtype)
                if key.startswith(prefix):
                    out[key] = MetadataValue(gguf.GGUFValueType(vtype), item_value)
    return out


def read_tensor_index(path: Path) -> list[TensorEntry]:
    path = Path(path)
    with open(path, "rb") as handle:
        def unpack(fmt: str) -> int:
            size = struct.calcsize(fmt)
            data = handle.read(size)
            if len(data) != size:
                raise ConversionError(f"{path} is truncated", hint="rebuild or re-download the file")
            return struct.unpack(fmt, data)[0]

        def skip_value(vtype: int) -> None:
            if vtype in _FIXED:
                handle.seek(_FIXED[vtype], 1)
            elif vtype == _STRING:
                handle.seek(unpack("<Q"), 1)
            elif vtype == _ARRAY:
                item, count = unpack("<I"), unpack("<Q")
                if item in _FIXED:
                    handle.seek(_FIXED[item] * count, 1)
                else:
                    for _ in range(count):
                        skip_value(item)
            else:
                raise ConversionError(f"{path} has an unknown GGUF value type {vtype}", hint="rebuild the file")

        if handle.read(4) != b"GGUF":
            raise ConversionError(f"{path} is not a GGUF file", hint="pass a .gguf file")
        unpack("<I")  # version
        n_tensors, n_kv = unpack("<Q"), unpack("<Q")
        alignment = gguf.GGUF_DEFAULT_ALIGNMENT
        for _ in range(n_kv):
            key = handle.read(unpack("<Q")).decode("utf-8", errors="replace")
            vtype = unpack("<I")
            if key == "general.alignment" and vtype == 4:
                alignment = unpack("<I")
            else:
                skip_value(vtype)
        raw = []
        for _ in range(n_tensors):
            name = handle.read(unpack("<Q")).decode("utf-8")
            dims = tuple(unpack("<Q") for _ in range(unpack("<I")))
            raw.append((name, unpack("<I"), dims, unpack("<Q")))
        start = -(-handle.tell() // alignment) * alignment
    return [TensorEntry(name, gguf.GGMLQuantizationType(t), dims, start + off) for name, t, dims, off in raw]
