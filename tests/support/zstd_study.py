"""What zstd really buys on a GGUF: ratio, time and unpack speed per level, measured (tests and benchmarks).

Quantized weights are close to random bytes, so zstd saves only a few percent on
them; the level is chosen from measurements, not assumed (`choose_level`): a slower
level is worth its time only when it buys a real share of the file at a real rate.

The byte-grouping transform (`group_gguf_bytes`) is a lossless permutation tried
before zstd: inside each quantized tensor it puts the float16 block scales of all
blocks together, then all the packed quant bytes, so the compressible scale bytes
are not interleaved with incompressible nibbles. `measure_grouping` says whether
it helps; the bundle format only uses it if it does.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zstandard

from edge_assistant.errors import UsageError

DEFAULT_LEVELS = (1, 3, 9, 19)

# GGUF type -> (block bytes, [(field offset, field length), ...]) in ggml's block struct order.
BLOCK_FIELDS: dict[str, tuple[int, list[tuple[int, int]]]] = {
    "Q4_0": (18, [(0, 2), (2, 16)]),  # d (f16), qs (32 nibbles)
    "Q4_1": (20, [(0, 2), (2, 2), (4, 16)]),  # d, m, qs
    "Q5_0": (22, [(0, 2), (2, 4), (6, 16)]),  # d, qh (high bits), qs
    "Q5_1": (24, [(0, 2), (2, 2), (4, 4), (8, 16)]),  # d, m, qh, qs
    "Q8_0": (34, [(0, 2), (2, 32)]),  # d, qs (int8)
    "Q4_K": (144, [(0, 2), (2, 2), (4, 12), (16, 128)]),  # d, dmin, scales, qs
    "Q5_K": (176, [(0, 2), (2, 2), (4, 12), (16, 32), (48, 128)]),  # d, dmin, scales, qh, qs
    "Q6_K": (210, [(0, 128), (128, 64), (192, 16), (208, 2)]),  # ql, qh, scales, d
    "F16": (2, [(0, 1), (1, 1)]),  # byte planes: low bytes, then high (sign/exponent) bytes
    "BF16": (2, [(0, 1), (1, 1)]),
    "F32": (4, [(0, 1), (1, 1), (2, 1), (3, 1)]),
}


@dataclass(frozen=True)
class ZstdLevel:
    level: int
    size: int  # input bytes
    packed_size: int
    compress_s: float
    decompress_mb_s: float  # MB of output per second when unpacking

    @property
    def ratio(self) -> float:
        """Packed size as a fraction of the input (0.94 = saves 6%)."""
        return self.packed_size / self.size

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


def measure_zstd(path: Path | str, levels: tuple[int, ...] = DEFAULT_LEVELS, *, threads: int = 1) -> list[ZstdLevel]:
    """Compress `path` at each level in memory; time packing and unpacking."""
    data = Path(path).read_bytes()
    if not data:
        raise UsageError(f"{path} is empty", hint="measure a complete GGUF")
    results = []
    for level in levels:
        t0 = time.perf_counter()
        packed = zstandard.ZstdCompressor(level=level, threads=threads if threads > 1 else 0).compress(data)
        compress_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = zstandard.ZstdDecompressor().decompress(packed, max_output_size=len(data))
        decompress_s = time.perf_counter() - t0
        if out != data:  # a real check: never report a level whose round trip is wrong
            raise RuntimeError(f"zstd level {level} did not round-trip {path}")
        results.append(ZstdLevel(level, len(data), len(packed), compress_s, len(data) / 1e6 / max(decompress_s, 1e-9)))
    return results


def choose_level(measured: list[ZstdLevel], *, tolerance: float = 0.005,
                 min_bytes_per_s: float = 50_000) -> ZstdLevel:
    """Walk from the fastest level up; move to a slower level only when it pays.

    A slower level must save at least `tolerance` of the input over the level held
    so far *and* at least `min_bytes_per_s` bytes per extra second of compression
    (the build packs once; every user downloads the result, so 50 kB per second of
    build time is a low bar that still refuses level 19 on already-dense 4/5-bit files).
    """
    if not measured:
        raise UsageError("no zstd measurements to choose from", hint="measure at least one level")
    ordered = sorted(measured, key=lambda m: (m.compress_s, m.level))
    held = ordered[0]
    for cand in ordered[1:]:
        saved = held.packed_size - cand.packed_size
        extra_s = max(cand.compress_s - held.compress_s, 1e-9)
        if saved >= tolerance * cand.size and saved / extra_s >= min_bytes_per_s:
            held = cand
    return held


def _group(raw: np.ndarray, block_bytes: int, fields: list[tuple[int, int]]) -> bytes:
    blocks = raw.reshape(-1, block_bytes)
    return b"".join(np.ascontiguousarray(blocks[:, off : off + length]).tobytes() for off, length in fields)


def _ungroup(grouped: bytes, block_bytes: int, fields: list[tuple[int, int]]) -> bytes:
    n = len(grouped) // block_bytes
    out = np.empty((n, block_bytes), dtype=np.uint8)
    src = np.frombuffer(grouped, dtype=np.uint8)
    pos = 0
    for off, length in fields:
        out[:, off : off + length] = src[pos : pos + n * length].reshape(n, length)
        pos += n * length
    return out.tobytes()


def group_tensor_bytes(raw: bytes, gguf_type: str) -> bytes:
    """Field-grouped copy of one tensor's bytes (unchanged for types without a layout here)."""
    layout = BLOCK_FIELDS.get(gguf_type)
    if layout is None or len(raw) % layout[0]:
        return raw
    return _group(np.frombuffer(raw, dtype=np.uint8), *layout)


def ungroup_tensor_bytes(grouped: bytes, gguf_type: str) -> bytes:
    """Inverse of `group_tensor_bytes`."""
    layout = BLOCK_FIELDS.get(gguf_type)
    if layout is None or len(grouped) % layout[0]:
        return grouped
    return _ungroup(grouped, *layout)


def group_gguf_bytes(path: Path | str) -> bytes:
    """The GGUF with every tensor's bytes field-grouped in place (same length, same offsets)."""
    from edge_assistant.builder.gguf_index import read_tensor_index

    path = Path(path)
    data = bytearray(path.read_bytes())
    for tensor in read_tensor_index(path):
        start, n = tensor.offset, tensor.nbytes
        data[start : start + n] = group_tensor_bytes(bytes(data[start : start + n]), tensor.qtype.name)
    return bytes(data)


@dataclass(frozen=True)
class GroupingResult:
    level: int
    plain_packed: int
    grouped_packed: int

    @property
    def gain(self) -> float:
        """Fraction of the plain packed size the transform saves (negative: it costs)."""
        return 1.0 - self.grouped_packed / self.plain_packed


def measure_grouping(path: Path | str, level: int = 3) -> GroupingResult:
    """Packed size of the GGUF at `level` with and without byte grouping."""
    plain = Path(path).read_bytes()
    grouped = group_gguf_bytes(path)
    compressor = zstandard.ZstdCompressor(level=level)
    return GroupingResult(level, len(compressor.compress(plain)), len(compressor.compress(grouped)))
