"""The builder's view of a GGUF: its tensors (type, shape, where the bytes are) and typed metadata.

Nothing here parses GGUF: :mod:`edge_assistant.bundle.ggufmeta` is the one
reader (bounds-checked, one-line errors on damaged files); this module turns
its tables into the ``gguf`` package's enums and numpy arrays over a memory map,
which is what the converter, the quantizers and the reports need.
(`gguf.GGUFReader` builds a numpy view per metadata string, which takes tens of
seconds for a 128k-token vocabulary.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

from ..bundle.ggufmeta import GGUFInfo, read_gguf_info
from ..errors import ConversionError


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
        dtype = _NUMERIC.get(self.qtype)
        if dtype is None:
            raise ValueError(f"{self.name} is {self.qtype.name}; only F32/F16 can be read as numbers")
        data = np.fromfile(path, dtype=dtype, count=self.n_elements, offset=self.offset)
        return data.reshape(tuple(reversed(self.shape)))

    def view(self, buffer: np.ndarray) -> np.ndarray:
        """The tensor's bytes inside ``buffer`` (the whole file as uint8, e.g. :func:`map_file`), not copied:
        F32/F16 as numbers in numpy order, any other type as uint8 rows of its blocks."""
        raw = buffer[self.offset : self.offset + self.nbytes]
        if raw.size != self.nbytes:
            raise ConversionError(f"the GGUF is truncated: tensor {self.name!r} ends past the end of the file",
                                  hint="rebuild or re-download the file")
        dtype = _NUMERIC.get(self.qtype)
        if dtype is not None:
            return raw.view(dtype).reshape(tuple(reversed(self.shape)))
        rows = self.n_elements // self.shape[0]
        return raw.reshape(rows, self.nbytes // rows)


_NUMERIC = {gguf.GGMLQuantizationType.F32: np.float32, gguf.GGMLQuantizationType.F16: np.float16}


def map_file(path: Path) -> np.ndarray:
    """The file as a read-only uint8 memory map (tensor data is paged in only when read)."""
    return np.memmap(path, dtype=np.uint8, mode="r")


@dataclass(frozen=True)
class MetadataValue:
    """One metadata entry as stored: GGUF value type, value (strings as raw bytes), array item type."""

    vtype: gguf.GGUFValueType
    value: object
    sub_type: gguf.GGUFValueType | None = None


def tensor_entries(info: GGUFInfo) -> list[TensorEntry]:
    """The tensor table of ``info`` (read with ``tensors=True``), with absolute offsets."""
    if info.tensors is None or info.data_offset is None:
        raise ValueError("read the file with read_gguf_info(path, tensors=True) first")
    entries = []
    for t in info.tensors:
        try:
            qtype = gguf.GGMLQuantizationType(t.ggml_type)
        except ValueError:
            raise ConversionError(f"{info.path}: tensor {t.name!r} has unknown type {t.ggml_type}",
                                  hint="the file is corrupt or needs a newer gguf package; rebuild it") from None
        entries.append(TensorEntry(t.name, qtype, t.shape, info.data_offset + t.offset))
    return entries


def read_tensor_index(path: Path) -> list[TensorEntry]:
    """Every tensor of the GGUF at ``path``, in file order (the metadata's arrays are skipped)."""
    return tensor_entries(read_gguf_info(path, tensors=True))


def typed_metadata(info: GGUFInfo, prefix: str = "") -> dict[str, MetadataValue]:
    """The entries of ``info`` (read with ``keep_arrays=True, raw_strings=True``) whose key starts with ``prefix``."""
    out: dict[str, MetadataValue] = {}
    for key, (vtype, item) in info.value_types.items():
        if key.startswith(prefix):
            sub = gguf.GGUFValueType(item) if item is not None else None
            out[key] = MetadataValue(gguf.GGUFValueType(vtype), info.metadata[key], sub)
    return out


def read_metadata(path: Path, prefix: str = "") -> dict[str, MetadataValue]:
    """Metadata entries whose key starts with ``prefix``, strings kept as raw bytes for verbatim copies."""
    return typed_metadata(read_gguf_info(path, keep_arrays=True, raw_strings=True), prefix)

