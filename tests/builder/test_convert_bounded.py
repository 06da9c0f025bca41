"""Conversion within bounded memory: tensors larger than the chunk go out a block of rows at a time,
and the file is byte for byte the one whole-tensor conversion writes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from edge_assistant.builder import convert
from edge_assistant.builder.safetensors_source import SafetensorsSource

pytestmark = [pytest.mark.builder]


@pytest.mark.parametrize("outtype", ["f16", "q8_0", "f32"])
def test_row_blocks_write_the_same_file_as_whole_tensors(llama31_dir: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch, outtype: str) -> None:
    whole = convert.convert_hf_to_gguf(llama31_dir, tmp_path / "whole.gguf", outtype=outtype)
    reads: list[tuple[str, int, int]] = []
    real = SafetensorsSource.load_rows

    def spy(self, name, start, stop):  # type: ignore[no-untyped-def]
        reads.append((name, start, stop))
        return real(self, name, start, stop)

    monkeypatch.setattr(SafetensorsSource, "load_rows", spy)
    # 7 rows of the 64-wide model per block: blocks that do not divide the tensors evenly
    monkeypatch.setattr(convert, "CHUNK_BYTES", 7 * 64 * 4)
    streamed = convert.convert_hf_to_gguf(llama31_dir, tmp_path / "streamed.gguf", outtype=outtype)
    embedding = [r for r in reads if r[0] == "model.embed_tokens.weight"]
    assert len(embedding) > 1 and all(stop - start <= 7 for _, start, stop in embedding)
    assert streamed.read_bytes() == whole.read_bytes()


def test_bf16_row_ranges_widen_exactly_like_torch(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    weight = torch.randn(37, 48, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    save_file({"model.embed_tokens.weight": weight}, str(tmp_path / "model.safetensors"))
    with SafetensorsSource(tmp_path) as source:
        rows = source.load_rows("model.embed_tokens.weight", 5, 19)
        whole = source.load("model.embed_tokens.weight")
    assert rows.dtype.name == "float32" and rows.shape == (14, 48)
    assert (rows == weight[5:19].float().numpy()).all()
    assert (whole == weight.float().numpy()).all()
