"""Test helper: a small GGUF written by the gguf package, with a value of every kind and four tensor types."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

NOT_UTF8 = b"caf\xe9 \xff"   # a string value that is not UTF-8: a verbatim copy must keep its bytes


def write_small_gguf(path: Path) -> Path:
    """A "llama" GGUF: context length 256, a 300-token vocabulary, scalars, a bool array, a non-UTF-8 string;
    tensors token_embd F16 [300, 64], blk.0.attn_q F32 [64, 64], blk.0.ffn_up Q8_0 [32, 64], output_norm F32 [64]
    (numpy shapes), random but seeded."""
    rng = np.random.default_rng(0)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(256)
    writer.add_uint32("llama.block_count", 2)
    writer.add_float32("llama.rope.freq_base", 10000.5)
    writer.add_bool("tokenizer.ggml.add_bos_token", True)
    writer.add_int64("test.negative", -(2 ** 40))
    writer.add_key_value("test.raw", NOT_UTF8, gguf.GGUFValueType.STRING)
    writer.add_token_list([f"tok{i}" for i in range(300)])
    writer.add_token_scores([float(i) / 3 for i in range(300)])
    writer.add_token_types([1 + i % 3 for i in range(300)])
    writer.add_array("test.flags", [True, False, True])
    writer.add_tensor("token_embd.weight", rng.standard_normal((300, 64)).astype(np.float16))
    writer.add_tensor("blk.0.attn_q.weight", rng.standard_normal((64, 64)).astype(np.float32))
    q8 = gguf.quants.quantize(rng.standard_normal((32, 64)).astype(np.float32), gguf.GGMLQuantizationType.Q8_0)
    writer.add_tensor("blk.0.ffn_up.weight", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.add_tensor("output_norm.weight", np.ones(64, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
