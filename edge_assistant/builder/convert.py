"""Hugging Face Llama-family checkpoint -> GGUF that llama.cpp runs with the same numbers.

Written on the `gguf` library's writer in its streaming mode: all tensor infos are
declared from the shard headers first, then each tensor is read, fixed up
(rope row layout) and encoded one at a time, so memory stays near one tensor.
Tensors larger than ``CHUNK_BYTES`` (as float32) are read, encoded and written a
block of rows at a time (a Llama-3 8B embedding is 2 GB as float32), so peak
memory stays near one chunk, not one whole tensor. The output appears under its
final name only when complete.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from ..durable import atomic_file
from ..errors import ConversionError
from .float16 import FLOAT16_MAX, to_float16
from .hparams import LlamaHParams, llama_hparams, read_config
from .rope_layout import interleave_rope_rows, llama3_rope_factors
from .safetensors_source import SafetensorsSource
from .tensor_names import IGNORED, RowLayout, gguf_name
from .vocab import copy_gguf_tokenizer, read_hf_tokenizer

ARCH = "llama"
Q = gguf.GGMLQuantizationType

# --outtype -> (llama.cpp file type, tensor type for 2-D weights)
OUTTYPES: dict[str, tuple[gguf.LlamaFileType, gguf.GGMLQuantizationType]] = {
    "f32": (gguf.LlamaFileType.ALL_F32, Q.F32),
    "f16": (gguf.LlamaFileType.MOSTLY_F16, Q.F16),
    "bf16": (gguf.LlamaFileType.MOSTLY_BF16, Q.BF16),
    "q8_0": (gguf.LlamaFileType.MOSTLY_Q8_0, Q.Q8_0),
}

Progress = Callable[[int, int, str], None]  # (tensors done, tensors total, tensor just written)


@dataclass(frozen=True)
class PlannedTensor:
    gguf_name: str
    hf_name: str | None       # None for tensors we compute (rope_freqs)
    shape: tuple[int, ...]    # numpy order (rows first), as in the HF checkpoint
    layout: RowLayout
    qtype: gguf.GGMLQuantizationType

    @property
    def nbytes(self) -> int:
        return int(np.prod(gguf.quant_shape_to_byte_shape(self.shape, self.qtype)))


def _tensor_type(shape: tuple[int, ...], weight_type: gguf.GGMLQuantizationType) -> gguf.GGMLQuantizationType:
    # Norms and other vectors stay F32: they are tiny and llama.cpp computes them in F32.
    if len(shape) < 2:
        return Q.F32
    block = gguf.GGML_QUANT_SIZES[weight_type][0]
    if shape[-1] % block:
        return Q.F16  # a row that does not split into whole blocks cannot take the block type
    return weight_type


def _expected_names(hp: LlamaHParams) -> set[str]:
    per_layer = ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                 "ffn_norm", "ffn_gate", "ffn_up", "ffn_down")
    names = {f"blk.{i}.{t}.weight" for i in range(hp.n_layer) for t in per_layer}
    names |= {"token_embd.weight", "output_norm.weight"}
    if not hp.tied_embeddings:
        names.add("output.weight")
    return names


def _expected_shape(name: str, hp: LlamaHParams) -> tuple[int, ...] | None:
    kind = name.split(".")[-2]
    return {
        "token_embd": (hp.vocab_size, hp.n_embd), "output": (hp.vocab_size, hp.n_embd),
        "attn_q": (hp.n_head * hp.head_dim, hp.n_embd), "attn_k": (hp.n_head_kv * hp.head_dim, hp.n_embd),
        "attn_v": (hp.n_head_kv * hp.head_dim, hp.n_embd), "attn_output": (hp.n_embd, hp.n_head * hp.head_dim),
        "ffn_gate": (hp.n_ff, hp.n_embd), "ffn_up": (hp.n_ff, hp.n_embd), "ffn_down": (hp.n_embd, hp.n_ff),
        "attn_norm": (hp.n_embd,), "ffn_norm": (hp.n_embd,), "output_norm": (hp.n_embd,),
    }.get(kind)


def plan_tensors(source: SafetensorsSource, hp: LlamaHParams, weight_type: gguf.GGMLQuantizationType,
                 where: Path) -> list[PlannedTensor]:
    """Map every checkpoint tensor to its GGUF tensor; refuse unknown, missing or misshapen ones."""
    plan: list[PlannedTensor] = []
    if hp.rope_scaling is not None and hp.rope_scaling.rope_type == "llama3":
        plan.append(PlannedTensor("rope_freqs.weight", None, (hp.head_dim // 2,), RowLayout.AS_IS, Q.F32))
    for hf_name in source.names():
        if IGNORED.fullmatch(hf_name) or (hf_name == "lm_head.weight" and hp.tied_embeddings):
            continue  # recomputed buffers; a tied output matrix duplicates token_embd
        mapped = gguf_name(hf_name)
        if mapped is None:
            raise ConversionError(f"unexpected tensor {hf_name} in {where}",
                                  hint="only plain Llama checkpoints (no extra heads or adapters merged "
                                       "under other names) can be converted")
        name, layout = mapped
        shape = source.shape(hf_name)
        expected = _expected_shape(name, hp)
        if expected is not None and shape != expected:
            raise ConversionError(f"{hf_name} has shape {list(shape)}, config.json implies {list(expected)}",
                                  hint="the weights and config.json do not belong together")
        plan.append(PlannedTensor(name, hf_name, shape, layout, _tensor_type(shape, weight_type)))
    missing = _expected_names(hp) - {p.gguf_name for p in plan}
    if missing:
        raise ConversionError(f"{where} lacks {len(missing)} tensor(s), e.g. {sorted(missing)[0]}",
                              hint="copy the complete model folder")
    return plan


def _write_hparams(writer: gguf.GGUFWriter, hp: LlamaHParams, file_type: gguf.LlamaFileType) -> None:
    writer.add_name(hp.name)
    writer.add_context_length(hp.n_ctx)
    writer.add_embedding_length(hp.n_embd)
    writer.add_block_count(hp.n_layer)
    writer.add_feed_forward_length(hp.n_ff)
    writer.add_head_count(hp.n_head)
    writer.add_head_count_kv(hp.n_head_kv)
    writer.add_layer_norm_rms_eps(hp.rms_eps)
    writer.add_rope_freq_base(hp.rope_theta)
    writer.add_rope_dimension_count(hp.head_dim)
    if hp.head_dim * hp.n_head != hp.n_embd:
        writer.add_key_length(hp.head_dim)
        writer.add_value_length(hp.head_dim)
    if hp.rope_scaling is not None and hp.rope_scaling.rope_type == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(hp.rope_scaling.factor)
    writer.add_vocab_size(hp.vocab_size)
    writer.add_file_type(file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def _encode(data: np.ndarray, qtype: gguf.GGMLQuantizationType, name: str) -> np.ndarray:
    """``data`` in ``qtype``; a value that is not finite, or beyond float16's range for F16, is refused."""
    half = to_float16(data) if qtype == Q.F16 else None  # its own check covers the source's NaN and inf
    if half is None and not np.isfinite(data).all():
        raise ConversionError(f"{name} has values that are not finite (NaN or inf)",
                              hint="the checkpoint is damaged: download it again or re-save it from training")
    if qtype == Q.F16:
        if half is None:
            raise ConversionError(f"{name} has values beyond float16's range (|x| > {FLOAT16_MAX:.0f})",
                                  hint="convert with --outtype bf16 (the same size, float32's range) or f32")
        return half
    if qtype == Q.F32:
        return np.ascontiguousarray(data, dtype=np.float32)
    return gguf.quants.quantize(np.ascontiguousarray(data, dtype=np.float32), qtype)


# Largest float32 slice of a tensor held at once; bigger AS_IS tensors are streamed in row blocks.
CHUNK_BYTES = 64 << 20


def _tensor_data(item: PlannedTensor, source: SafetensorsSource, hp: LlamaHParams) -> np.ndarray:
    if item.hf_name is None:
        return llama3_rope_factors(hp)
    data = source.load(item.hf_name)
    if item.layout is RowLayout.ROPE_Q:
        data = interleave_rope_rows(data, hp.n_head)
    elif item.layout is RowLayout.ROPE_K:
        data = interleave_rope_rows(data, hp.n_head_kv)
    return data


class _RowBlocks:
    """A tensor the writer streams: ``tofile`` reads, encodes and writes one block of rows at a time.

    GGUFWriter.write_tensor_data only needs ``nbytes`` and ``tofile`` (the file is
    little-endian, so it never byte-swaps), which lets a tensor far larger than
    the chunk go out without ever being whole in memory.
    """

    def __init__(self, item: PlannedTensor, source: SafetensorsSource, rows_per_block: int) -> None:
        self.item, self.source, self.rows_per_block = item, source, rows_per_block
        self.nbytes = item.nbytes

    def tofile(self, handle: Any) -> None:
        rows = self.item.shape[0]
        for start in range(0, rows, self.rows_per_block):
            block = self.source.load_rows(self.item.hf_name, start, min(rows, start + self.rows_per_block))
            _encode(block, self.item.qtype, self.item.hf_name).tofile(handle)


def _writable(item: PlannedTensor, source: SafetensorsSource, hp: LlamaHParams) -> Any:
    """The tensor's encoded data, or a streamed stand-in when it is larger than CHUNK_BYTES."""
    if item.hf_name is not None and item.layout is RowLayout.AS_IS and len(item.shape) >= 2:
        rows_per_block = max(1, CHUNK_BYTES // source.row_bytes(item.hf_name))
        if rows_per_block < item.shape[0]:
            return _RowBlocks(item, source, rows_per_block)
    return _encode(_tensor_data(item, source, hp), item.qtype, item.hf_name or item.gguf_name)


def convert_hf_to_gguf(hf_dir: Path, out: Path, *, outtype: str = "f16", source_gguf: Path | None = None,
                       progress: Progress | None = None) -> Path:
    """Convert a Hugging Face Llama-family folder (safetensors + tokenizer) to a GGUF at ``out``.

    ``source_gguf``: when the model was loaded from that GGUF (transformers' ``gguf_file=``),
    its tokenizer metadata is copied verbatim instead of re-deriving it from the lossy
    round-tripped tokenizer. Returns ``out``.
    """
    hf_dir, out = Path(hf_dir), Path(out)
    if outtype not in OUTTYPES:
        raise ConversionError(f"unknown outtype {outtype!r}", hint=f"choose one of {', '.join(OUTTYPES)}")
    if not hf_dir.is_dir():
        raise ConversionError(f"{hf_dir} is not a folder", hint="pass a Hugging Face model folder")
    if source_gguf is not None and not Path(source_gguf).is_file():
        raise ConversionError(f"source GGUF {source_gguf} does not exist",
                              hint="pass the .gguf file the model was loaded from, or leave it out")
    file_type, weight_type = OUTTYPES[outtype]
    hp = llama_hparams(read_config(hf_dir), hf_dir)
    # Read the tokenizer before writing anything, so a bad tokenizer leaves no file behind.
    tokenizer = None if source_gguf is not None else read_hf_tokenizer(hf_dir, hp.vocab_size)
    with SafetensorsSource(hf_dir) as source, atomic_file(out) as temp:
        plan = plan_tensors(source, hp, weight_type, hf_dir)
        writer = gguf.GGUFWriter(temp, ARCH)
        try:
            _write_hparams(writer, hp, file_type)
            if tokenizer is not None:
                tokenizer.write(writer)
            else:
                copy_gguf_tokenizer(writer, Path(source_gguf), hp.vocab_size)  # type: ignore[arg-type]
            for item in plan:
                writer.add_tensor_info(item.gguf_name, item.shape, np.dtype(np.float32), item.nbytes,
                                       raw_dtype=item.qtype)
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_ti_data_to_file()
            for index, item in enumerate(plan, 1):
                writer.write_tensor_data(_writable(item, source, hp))
                if progress is not None:
                    progress(index, len(plan), item.gguf_name)
        finally:
            writer.close()
    return out
