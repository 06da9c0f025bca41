"""The build's quantize stage without importance: our streaming quantizer, byte for byte llama.cpp's file."""

from __future__ import annotations

import json
from pathlib import Path

from edge_assistant.builder.pipeline import STAGE_FOLDERS, run_build
from edge_assistant.builder.recipe import load_recipe

from .pipeline_fixtures import router_embedding_dir, tiny_llama, tiny_recipe_text, write_recipe  # noqa: F401
from tests.support.llama_quantize import llama_quantize as _llama_quantize


def test_a_plain_mix_is_quantized_by_our_quantizer_into_llama_cpps_exact_bytes(
        tiny_llama: Path, router_embedding_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    text = tiny_recipe_text(tiny_llama, router_embedding_dir)
    text = text.replace('outtype = "f32"\nqtype = "Q8_0"\nawq = true',
                        'outtype = "f16"\nqtype = "Q4_K_M"\nawq = false')
    assert 'qtype = "Q4_K_M"' in text, "the tiny recipe's [quantize] table changed: update this test"
    recipe = write_recipe(tmp_path, text)
    out = tmp_path / "out"
    run_build(load_recipe(recipe), out, until_stage="quantize", progress=False, log=lambda line: None)

    record = json.loads((out / STAGE_FOLDERS["quantize"] / "record.json").read_text())
    ours = out / STAGE_FOLDERS["quantize"] / record["outputs"]["gguf"]
    f16 = out / STAGE_FOLDERS["convert"] / "model-f16.gguf"
    reference = tmp_path / "llama.cpp-Q4_K_M.gguf"
    _llama_quantize(f16, reference, "Q4_K_M")

    assert record["metrics"]["quantizer"] == "ggml kernels"
    assert ours.read_bytes() == reference.read_bytes()
    # 64-wide rows do not split into 256-blocks: every k-quant wish falls back, and the record says so
    assert record["metrics"]["fallbacks"], record["metrics"]
    assert all(f["wanted"].endswith("_K") and not f["got"].endswith("_K") for f in record["metrics"]["fallbacks"])


def test_compare_false_skips_the_comparison_with_llama_cpp(
        tiny_llama: Path, router_embedding_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    text = tiny_recipe_text(tiny_llama, router_embedding_dir)
    text = text.replace("awq_calib_rows = 8", "awq_calib_rows = 8\ncompare = false")
    assert "compare = false" in text, "the tiny recipe's [quantize] table changed: update this test"
    out = tmp_path / "out"
    run_build(load_recipe(write_recipe(tmp_path, text)), out, until_stage="compare", progress=False,
              log=lambda line: None)
    assert (out / STAGE_FOLDERS["quantize"] / "record.json").is_file()
    assert not (out / STAGE_FOLDERS["compare"]).exists()
