"""Our GGUF quantizer: ggml's kernels, our per-tensor types, importance weights, one tensor at a time.

`quantize_with_plan(src, out, types)` reads a float GGUF (f32/f16/bf16 tensors)
one slab of rows at a time with positioned reads (no memory map, so the source's
pages never count in the process's resident set), quantizes each tensor to the
type the plan gives it with `ggml_quantize_chunk` (weighted by that tensor's
importance vector when one is given) and streams it into the output with the
`gguf` writer: at most one slab of one tensor's rows is in memory, whatever the
model size (an 8B-shaped Q4_K_M: see benchmarks/convert_quantize.py). The
metadata and tensor table come from gguf_index, which reads a 128k-token
vocabulary in seconds where `gguf.GGUFReader` takes minutes and ~600 MB.

The output is laid out like `llama_model_quantize`'s: the same metadata in the
same order (general.quantization_version and general.file_type moved to the
end), tensors in llama.cpp's storage order, 32-byte alignment. With the plan
of a mix and no importance the file is byte for byte llama.cpp's (tested).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..bundle.ggufmeta import read_gguf_info
from ..durable import atomic_file
from ..errors import ConversionError
from ..threads import usable_cpus
from . import ggml_quant
from .gguf_index import MetadataValue, TensorEntry, tensor_entries, typed_metadata
from .quant_mix import FTYPES, ModelShape, TensorSpec, plan_mix, requires_importance, storage_order

GGML_QNT_VERSION = 2
_SLAB_BYTES = 64 * 2**20  # float32 rows quantized at once: bounds memory on 8B-sized tensors
_FLOAT_TYPES = ("F32", "F16", "BF16")
_DROPPED_KEYS = ("split.no", "split.count", "split.tensors.count")


@dataclass
class QuantizedFile:
    path: Path
    size: int
    bits_per_weight: float
    types: dict[str, str] = field(default_factory=dict)  # tensor -> ggml type written
    seconds: float = 0.0
    with_importance: int = 0  # tensors quantized with an importance vector

    def type_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for t in self.types.values():
            counts[t] = counts.get(t, 0) + 1
        return counts


@dataclass(frozen=True)
class _Source:
    """A GGUF's metadata (in file order, strings as raw bytes) and tensor table, without its tensor data."""

    path: Path
    metadata: dict[str, MetadataValue]
    tensors: list[TensorEntry]

    def int_field(self, key: str) -> int | None:
        entry = self.metadata.get(key)
        return None if entry is None else int(entry.value)  # type: ignore[call-overload]

    @property
    def arch(self) -> str:
        entry = self.metadata.get("general.architecture")
        if entry is None or not isinstance(entry.value, bytes):
            raise ConversionError(f"{self.path} has no general.architecture", hint="re-run `build convert`")
        return entry.value.decode("utf-8")


def _reader(src: Path) -> _Source:
    # one parse of the header: a clear error when it is not GGUF at all
    info = read_gguf_info(src, keep_arrays=True, raw_strings=True, tensors=True)
    if info.is_adapter:
        raise ConversionError(f"{src} is a LoRA adapter, not a model", hint="quantize the base model GGUF")
    return _Source(src, typed_metadata(info), tensor_entries(info))


def model_shape(source: _Source) -> ModelShape:
    arch = source.arch
    n_layer = source.int_field(f"{arch}.block_count") or 0
    n_head = source.int_field(f"{arch}.attention.head_count") or 0
    n_head_kv = source.int_field(f"{arch}.attention.head_count_kv") or n_head
    return ModelShape(n_layer=n_layer, n_head=n_head, n_head_kv=n_head_kv,
                      n_expert=source.int_field(f"{arch}.expert_count") or 0, arch=arch)


def tensor_specs(source: _Source) -> list[TensorSpec]:
    return [TensorSpec(t.name, tuple(reversed(t.shape)), t.qtype.name) for t in source.tensors]


def mix_plan(src: Path | str, mix: str, *, has_importance: bool = False, fit_rows: bool = True) -> dict[str, str]:
    """The per-tensor types llama.cpp's `mix` gives the model in `src` (see quant_mix.plan_mix)."""
    reader = _reader(Path(src))
    return plan_mix(tensor_specs(reader), mix, model_shape(reader), has_importance=has_importance, fit_rows=fit_rows)


def mix_plans(src: Path | str, mix: str, *, has_importance: bool = False) -> tuple[dict[str, str], dict[str, str]]:
    """(the types `mix` gives, the types its rules wanted before the row-length fallback), from one header read."""
    reader = _reader(Path(src))
    specs, shape = tensor_specs(reader), model_shape(reader)
    return (plan_mix(specs, mix, shape, has_importance=has_importance),
            plan_mix(specs, mix, shape, has_importance=has_importance, fit_rows=False))


def mix_table(src: Path | str, mixes: Sequence[str]) -> dict[str, tuple[dict[str, str], int]]:
    """mix -> (the types llama.cpp's `mix` gives the model in `src`, their tensor bytes), from one header read."""
    reader = _reader(Path(src))
    specs, shape = tensor_specs(reader), model_shape(reader)
    table = {}
    for mix in mixes:
        types = plan_mix(specs, mix, shape)
        table[mix] = (types, sum(ggml_quant.tensor_bytes(types[t.name], t.shape) for t in specs))
    return table


def _copy_metadata(source: _Source, writer: Any, file_type: int) -> None:
    from gguf import GGUFValueType

    writer.kv_data[0].clear()  # the writer pre-fills general.architecture; keep the source's order instead
    for name, entry in source.metadata.items():
        if name in _DROPPED_KEYS or name in ("general.quantization_version", "general.file_type"):
            continue
        if entry.vtype == GGUFValueType.ARRAY:
            if not entry.value:
                raise ConversionError(f"metadata {name} is an empty array", hint="re-run `build convert`")
            writer.add_key_value(name, entry.value, entry.vtype, sub_type=entry.sub_type)
        else:
            writer.add_key_value(name, entry.value, entry.vtype)
    writer.add_uint32("general.quantization_version", GGML_QNT_VERSION)
    writer.add_uint32("general.file_type", file_type)


_STORED = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}


def _raw_rows(handle: Any, tensor: TensorEntry, start: int, stop: int) -> np.ndarray:
    """Rows start..stop of a tensor as stored (float tensors as numbers, others as bytes), read from disk."""
    row_bytes = tensor.nbytes // max(1, tensor.n_elements // tensor.shape[0])
    handle.seek(tensor.offset + start * row_bytes)
    dtype = _STORED.get(tensor.qtype.name, np.uint8)
    count = (stop - start) * row_bytes // np.dtype(dtype).itemsize
    rows = np.fromfile(handle, dtype=dtype, count=count)
    if rows.size != count:
        raise ConversionError(f"{tensor.name} is cut short in the file", hint="rebuild the source GGUF")
    return rows.reshape(stop - start, -1)


def _float_rows(handle: Any, tensor: TensorEntry, start: int, stop: int) -> np.ndarray:
    rows = _raw_rows(handle, tensor, start, stop)
    if tensor.qtype.name == "BF16":
        return (rows.astype(np.uint32) << 16).view(np.float32)
    return rows.astype(np.float32, copy=False)


def _slabs(tensor: TensorEntry, row_bytes: int) -> Any:
    """(start, stop) row ranges of at most _SLAB_BYTES each (at least one row)."""
    n_rows = tensor.n_elements // tensor.shape[0]
    per_slab = max(1, _SLAB_BYTES // max(1, row_bytes))
    for start in range(0, n_rows, per_slab):
        yield start, min(n_rows, start + per_slab)


def _encode(handle: Any, tensor: TensorEntry, qtype: str, importance: np.ndarray | None, threads: int) -> Any:
    """Yield the output bytes of one tensor, slab of rows by slab (each slab's rows split over `threads`)."""
    for start, stop in _slabs(tensor, 4 * tensor.shape[0]):
        rows = _float_rows(handle, tensor, start, stop)
        if qtype == "F32":
            yield rows
        elif qtype == "F16":
            yield rows.astype(np.float16)
        elif qtype == "BF16":
            yield ggml_quant.quantize_rows("BF16", rows, threads=threads)
        else:
            yield ggml_quant.quantize_rows(qtype, rows, importance, threads=threads)


def quantize_with_plan(
    src: Path | str,
    out: Path | str,
    types: Mapping[str, str],
    *,
    importance: Mapping[str, np.ndarray] | None = None,
    file_type: str = "Q8_0",
    mix: str | None = None,
    progress: Callable[[int, int, str, str], None] | None = None,
    threads: int = 0,
) -> QuantizedFile:
    """Write `out`: every tensor of `src` as `types[name]` (missing names keep their type).

    `threads` quantize each slab's rows at once (0: one per usable CPU); the bytes do not
    depend on it.

    `importance[name]` is that tensor's per-input-column weight vector. `file_type`
    names the llama_ftype recorded in the header. A tensor whose type needs
    importance and has none is refused before anything is written.
    """
    from gguf import GGMLQuantizationType, GGUFWriter

    started = time.perf_counter()
    n_threads = threads if threads > 0 else usable_cpus()
    src, out = Path(src), Path(out)
    reader = _reader(src)
    importance = importance or {}
    by_name = {t.name: t for t in reader.tensors}
    order = storage_order(list(by_name))
    plan: dict[str, str] = {}
    for name in order:
        t = by_name[name]
        want = types.get(name, t.qtype.name).upper()
        ggml_quant.type_id(want)
        cur = t.qtype.name
        if want != cur and cur not in _FLOAT_TYPES:
            raise ConversionError(f"{name} is already {cur}; requantizing is not supported",
                                  hint="quantize from the f16 GGUF that `build convert` writes")
        if want != cur and not ggml_quant.fits(want, t.shape[0]):
            raise ConversionError(f"{name}: rows of {t.shape[0]} do not split into {want} blocks",
                                  hint="choose a type whose block size divides the row length")
        if want != cur and name not in importance and (
                ggml_quant.requires_importance(want) or requires_importance(name, want, mix)):
            raise ConversionError(f"{name} -> {want} needs importance statistics and none were given",
                                  hint="pass calibration text (--calib) or choose a type of 4 bits or more")
        if name in importance and np.asarray(importance[name]).size != t.shape[0]:
            raise ConversionError(f"importance for {name} has {np.asarray(importance[name]).size} values, "
                                  f"the tensor's rows {t.shape[0]}", hint="collect importance on this model")
        plan[name] = want

    arch = reader.arch
    n_bytes = n_weights = used = 0
    with atomic_file(out) as temp, open(src, "rb") as handle:
        writer = GGUFWriter(temp, arch)
        align = reader.int_field("general.alignment")
        if align:
            writer.data_alignment = align
        _copy_metadata(reader, writer, FTYPES.get(file_type.upper(), FTYPES["Q8_0"]))
        for name in order:
            t = by_name[name]
            qtype = plan[name]
            shape = tuple(reversed(t.shape))
            nbytes = ggml_quant.tensor_bytes(qtype, shape) if qtype != t.qtype.name else t.nbytes
            writer.add_tensor_info(name, shape, np.dtype(np.float32), nbytes, raw_dtype=GGMLQuantizationType[qtype])
        writer.write_header_to_file(temp)
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        fout = writer.fout[0]
        for i, name in enumerate(order):
            t = by_name[name]
            qtype = plan[name]
            ti = writer.tensors[0].pop(name)
            writer.write_padding(fout, fout.tell())
            written = 0
            if qtype == t.qtype.name:  # copied as it is, in slabs of rows
                for start, stop in _slabs(t, t.nbytes // max(1, t.n_elements // t.shape[0])):
                    part = _raw_rows(handle, t, start, stop)
                    fout.write(part.data)
                    written += part.nbytes
            else:
                vec = importance.get(name)
                used += vec is not None and qtype not in _FLOAT_TYPES
                for part in _encode(handle, t, qtype, None if vec is None else np.asarray(vec, dtype=np.float32),
                                    n_threads):
                    fout.write(np.ascontiguousarray(part).data)
                    written += part.nbytes
            if written != ti.nbytes:
                raise ConversionError(f"{name}: wrote {written} bytes, expected {ti.nbytes}",
                                      hint="this is a bug in the quantizer; please report it")
            writer.write_padding(fout, written)
            n_bytes += written
            n_weights += t.n_elements
            if progress is not None:
                progress(i + 1, len(order), name, qtype)
        writer.state = type(writer.state).WEIGHTS
        writer.close()
    return QuantizedFile(out, out.stat().st_size, 8.0 * n_bytes / max(1, n_weights), plan,
                         time.perf_counter() - started, used)


def quantize_mix(src: Path | str, out: Path | str, mix: str, *, importance: Mapping[str, np.ndarray] | None = None,
                 progress: Callable[[int, int, str, str], None] | None = None, threads: int = 0) -> QuantizedFile:
    """llama.cpp's `mix` (Q4_K_M, Q5_0, IQ2_XS, ...) through our quantizer, optionally importance-weighted."""
    plan = mix_plan(src, mix, has_importance=bool(importance))
    return quantize_with_plan(src, out, plan, importance=importance, file_type=mix, mix=mix, progress=progress,
                              threads=threads)
