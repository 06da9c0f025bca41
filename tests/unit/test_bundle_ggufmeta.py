"""Our GGUF header reader against gguf.GGUFReader on the real SmolLM2, and on adapters we write."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_assistant.bundle.ggufmeta import BASE_SHA256_KEY, read_gguf_info
from edge_assistant.errors import BundleError
from tests.support.gguf_files import NOT_UTF8, write_small_gguf
from tests.support.lora import write_random_lora


def test_tensor_table_matches_what_the_gguf_writer_wrote(tmp_path: Path) -> None:
    import gguf

    path = write_small_gguf(tmp_path / "tiny.gguf")
    info = read_gguf_info(path, tensors=True)
    reader = gguf.GGUFReader(path)  # the gguf library's own reader, on a file small enough to be quick
    assert [(t.name, t.shape, t.ggml_type) for t in info.tensors] == [
        ("token_embd.weight", (64, 300), 1),    # GGUF order reverses numpy's (300, 64); F16
        ("blk.0.attn_q.weight", (64, 64), 0),   # F32
        ("blk.0.ffn_up.weight", (64, 32), 8),   # Q8_0
        ("output_norm.weight", (64,), 0),
    ]
    assert [t.offset for t in info.tensors] == [int(t.data_offset) - reader.data_offset for t in reader.tensors]
    assert info.context_length == 256
    assert info.array_lengths["tokenizer.ggml.tokens"] == 300
    assert info.dominant_tensor_type() == "F16"  # 19,200 F16 weights outnumber the rest
    # strings are text for the runtime and the stored bytes for a verbatim copy; both know the architecture
    raw = read_gguf_info(path, raw_strings=True)
    assert info.metadata["test.raw"] == NOT_UTF8.decode("utf-8", errors="replace")
    assert raw.metadata["test.raw"] == NOT_UTF8 and raw.architecture == info.architecture == "llama"


def test_real_smollm2_tensor_table_has_its_known_shapes(smollm2_gguf: Path) -> None:
    tensors = read_gguf_info(smollm2_gguf, tensors=True).tensor_map()
    assert len(tensors) == 272
    assert tensors["token_embd.weight"].shape == (576, 49152)
    assert tensors["token_embd.weight"].type_name == "Q8_0"
    assert tensors["blk.0.attn_q.weight"].shape == (576, 576)
    assert tensors["blk.29.attn_v.weight"].shape == (576, 192)  # 3 KV heads of 64
    assert tensors["blk.0.ffn_down.weight"].shape == (1536, 576)
    assert tensors["blk.0.ffn_down.weight"].type_name == "Q4_1"


def test_header_without_tensors_skips_the_vocabulary(smollm2_gguf: Path) -> None:
    info = read_gguf_info(smollm2_gguf)
    assert info.tensors is None
    assert "tokenizer.ggml.tokens" not in info.metadata
    assert info.array_lengths["tokenizer.ggml.tokens"] == 49152  # SmolLM2's vocabulary
    assert (info.architecture, info.file_type, info.context_length) == ("llama", "Q4_1", 8192)


def test_lora_rank_and_alpha_are_read_from_an_adapter(tmp_path: Path, smollm2_gguf: Path) -> None:
    adapter = write_random_lora(tmp_path / "a.gguf", smollm2_gguf, rank=4, alpha=8.0,
                                targets=("attn_k",), base_sha256="ab" * 32)
    info = read_gguf_info(adapter, tensors=True)
    assert info.is_adapter
    assert info.metadata["adapter.lora.alpha"] == 8.0
    assert info.metadata[BASE_SHA256_KEY] == "ab" * 32
    ranks = info.lora_ranks()
    assert len(ranks) == 30  # one attn_k per block of SmolLM2's 30
    assert set(ranks.values()) == {4}
    assert all(name.endswith(".attn_k.weight") for name in ranks)


def test_a_text_file_is_not_gguf(tmp_path: Path) -> None:
    path = tmp_path / "notes.gguf"
    path.write_text("hello, I am not a model")
    with pytest.raises(BundleError, match="notes.gguf is not a GGUF file"):
        read_gguf_info(path)


def test_a_header_cut_short_is_reported_as_truncated(tmp_path: Path, smollm2_gguf: Path) -> None:
    path = tmp_path / "cut.gguf"
    with open(smollm2_gguf, "rb") as f:
        path.write_bytes(f.read(4096))  # inside the metadata
    with pytest.raises(BundleError, match="truncated"):
        read_gguf_info(path, tensors=True)
