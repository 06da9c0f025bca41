"""Which llama.cpp files the build compares its base with: llama.cpp's own, of about the base's size."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_assistant.builder.frontier import LARGER, MAX_MIXES, PUBLISHED_MIXES, SMALLER, size_matched_mixes
from edge_assistant.builder.gguf_index import read_tensor_index
from edge_assistant.builder.quantizer import mix_plan
from tests.support.llama_quantize import llama_quantize


def _tensor_bytes(path: Path) -> int:
    return sum(t.nbytes for t in read_tensor_index(path))


@pytest.fixture(scope="module")
def llama_files(smollm_f32: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    """Every published mix of the tiny model, quantized by llama.cpp itself: mix -> tensor bytes."""
    folder = tmp_path_factory.mktemp("llama-mixes")
    sizes = {}
    for mix in PUBLISHED_MIXES:
        llama_quantize(smollm_f32, folder / f"{mix}.gguf", mix)
        sizes[mix] = _tensor_bytes(folder / f"{mix}.gguf")
    return sizes


def test_the_matched_mixes_are_llama_cpps_files_of_about_our_size(smollm_f32: Path, llama_files) -> None:
    ours = llama_files["Q5_0"]
    matched = size_matched_mixes(smollm_f32, ours, prefer="Q5_0")
    assert matched[0][0] == "Q5_0"  # the same file: nearest
    for mix, predicted in matched:
        assert predicted == llama_files[mix], mix  # the prediction is llama.cpp's real size
        assert ours * (1 - SMALLER) <= predicted <= ours * (1 + LARGER), mix
    plans = [tuple(sorted(mix_plan(smollm_f32, mix).items())) for mix, _ in matched]
    assert len(set(plans)) == len(plans), "two matched mixes give the same file"
    # None left out: every mix in the window is matched or gives a matched mix's very file, unless the cap is reached.
    chosen = set(plans)
    inside = [m for m, b in llama_files.items() if ours * (1 - SMALLER) <= b <= ours * (1 + LARGER)]
    left_out = [m for m in inside if tuple(sorted(mix_plan(smollm_f32, m).items())) not in chosen]
    assert not left_out or len(matched) == MAX_MIXES, left_out


def test_a_base_smaller_than_every_mix_is_compared_with_the_nearest_one(smollm_f32: Path, llama_files) -> None:
    smallest = min(llama_files, key=llama_files.get)
    matched = size_matched_mixes(smollm_f32, llama_files[smallest] // 3)
    assert [m for m, _ in matched] == [smallest]
