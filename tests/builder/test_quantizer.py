"""Our quantizer (ggml's kernels through ctypes, our type rules, the gguf writer) against llama.cpp's own.

Tiny random models with 256-wide rows and 8 blocks, so k-quants and IQ types apply
and llama.cpp's per-layer rules (first/last eighth, every third layer) all show: one
untied with grouped-query attention (n_gqa 4, which changes the attn_v rules), one
with tied embeddings (the output rules go to token_embd). Each mix is quantized by
`llama_model_quantize` and by ours; the files must be identical byte for byte.
SmolLM2's real 576-wide rows, where 256-block types fall back, are covered by the
benchmark (benchmarks/awq_compress.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_assistant.builder import ggml_quant
from edge_assistant.builder.quant_mix import requires_importance
from edge_assistant.builder.quantizer import mix_plan, quantize_mix, quantize_with_plan
from edge_assistant.errors import ConversionError

from tests.support.llama_quantize import llama_quantize as _llama_quantize

# Mixes llama.cpp quantizes without importance (the others refuse: IQ1/IQ2/IQ3_XXS/Q2_K_S/IQ3_XS/IQ3_M).
PLAIN_MIXES = ("F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "IQ4_NL", "IQ4_XS", "Q2_K", "Q3_K_S",
               "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "IQ3_S", "TQ1_0", "TQ2_0")
IMPORTANCE_MIXES = ("IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS", "IQ3_XS", "IQ3_M", "IQ1_S", "IQ1_M", "Q2_K_S",
                    "Q4_0", "Q5_0", "Q4_K_M", "IQ4_NL")


def _save_wide(folder: Path, *, tied: bool, seed: int, n_layers: int = 8) -> Path:
    from transformers import LlamaConfig

    from .model_factory import _save, sentencepiece_tokenizer, smollm_tokenizer

    tokenizer = smollm_tokenizer() if tied else sentencepiece_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=256, intermediate_size=512, num_hidden_layers=n_layers,
        num_attention_heads=8, num_key_value_heads=8 if tied else 2, max_position_embeddings=1024,
        rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=tied,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    return _save(folder, config, tokenizer, seed)


@pytest.fixture(scope="module")
def wide_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """name -> (HF folder, f16 GGUF): 'untied' (GQA 4, 256-wide), 'tied' (256-wide, tied embeddings)."""
    from edge_assistant.builder.convert import convert_hf_to_gguf

    out = {}
    for name, tied, seed in (("untied", False, 3), ("tied", True, 5)):
        root = tmp_path_factory.mktemp(f"wide-{name}")
        hf = _save_wide(root / "hf", tied=tied, seed=seed)
        out[name] = (hf, convert_hf_to_gguf(hf, root / "f16.gguf", outtype="f16"))
    return out


@pytest.mark.parametrize("model", ["untied", "tied"])
@pytest.mark.parametrize("mix", PLAIN_MIXES)
def test_our_file_is_llama_cpps_byte_for_byte(wide_models, tmp_path: Path, model: str, mix: str) -> None:
    _hf, f16 = wide_models[model]
    theirs, ours = tmp_path / "llama.gguf", tmp_path / "ours.gguf"
    _llama_quantize(f16, theirs, mix)
    result = quantize_mix(f16, ours, mix)
    a, b = theirs.read_bytes(), ours.read_bytes()
    assert len(a) == len(b), f"{mix}: sizes differ ({len(a)} vs {len(b)})"
    assert a == b, f"{mix}: first difference at byte {next(i for i in range(len(a)) if a[i] != b[i])}"
    assert result.size == len(a)


def _calibration(hf: Path) -> tuple[Any, Any]:
    """The tiny float model and its calibration windows (the training text through the chat template)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from edge_assistant.builder.awq import _calibration_ids
    from edge_assistant.builder.importance import chat_calibration_texts

    from .model_factory import _training_text

    model = AutoModelForCausalLM.from_pretrained(hf, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(hf)
    return model, _calibration_ids(tokenizer, chat_calibration_texts(tokenizer, _training_text()), 128, 512)


@pytest.fixture(scope="module")
def importance(wide_models) -> dict[str, dict[str, np.ndarray]]:
    """Importance from a real calibration pass over each tiny model."""
    from edge_assistant.builder.importance import collect_importance

    return {name: collect_importance(*_calibration(hf)) for name, (hf, _f16) in wide_models.items()}


@pytest.mark.parametrize("model", ["untied", "tied"])
@pytest.mark.parametrize("mix", IMPORTANCE_MIXES)
def test_with_importance_our_file_is_llama_cpps_byte_for_byte(wide_models, importance, tmp_path: Path,
                                                              mix: str, model: str) -> None:
    _hf, f16 = wide_models[model]
    vectors = importance[model]
    assert len(vectors) == 8 * 7 + 1  # every block linear of the 8 blocks, and the output matrix (token_embd if tied)
    theirs, ours = tmp_path / "llama.gguf", tmp_path / "ours.gguf"
    _llama_quantize(f16, theirs, mix, vectors)
    quantize_mix(f16, ours, mix, importance=vectors)
    assert theirs.read_bytes() == ours.read_bytes(), mix


@pytest.mark.parametrize("model,name", [("untied", "output.weight"), ("tied", "token_embd.weight")])
def test_importance_of_the_output_matrix_is_the_final_normed_hidden_state(wide_models, importance, model: str,
                                                                         name: str) -> None:
    """Collected under the GGUF name of the matrix that multiplies it: token_embd when tied (one matrix, two uses)."""
    import torch

    hf, _f16 = wide_models[model]
    vectors = importance[model]
    other = "token_embd.weight" if name == "output.weight" else "output.weight"
    assert name in vectors and other not in vectors
    net, ids = _calibration(hf)
    with torch.no_grad():
        hidden = torch.cat([net.model(input_ids=row.unsqueeze(0)).last_hidden_state[0] for row in ids])
    expected = hidden.double().pow(2).mean(dim=0).numpy()
    assert vectors[name].shape == (256,)
    np.testing.assert_allclose(vectors[name], expected, rtol=1e-4)


def test_importance_mix_without_importance_is_refused_before_writing(wide_models, tmp_path: Path) -> None:
    _hf, f16 = wide_models["untied"]
    out = tmp_path / "x.gguf"
    with pytest.raises(ConversionError, match="needs importance") as err:
        quantize_mix(f16, out, "IQ2_XS")
    assert "--calib" in err.value.hint
    assert not out.exists() and not list(tmp_path.iterdir())


def _weighted_error(f16: Path, quantized: Path, vectors: dict[str, np.ndarray]) -> float:
    from gguf import GGUFReader

    src = {t.name: t for t in GGUFReader(f16).tensors}
    total = 0.0
    for t in GGUFReader(quantized).tensors:
        if t.name not in vectors:
            continue
        shape = tuple(int(x) for x in reversed(t.shape.tolist()))
        q = ggml_quant.dequantize(t.tensor_type.name, t.data, shape)
        w = np.asarray(src[t.name].data, dtype=np.float32).reshape(shape)
        total += float((((w.astype(np.float64) - q) ** 2) * vectors[t.name].astype(np.float64)).sum())
    return total


# ggml's quantizers that take no notice of importance (their rounding is already exact or fixed).
IGNORES_IMPORTANCE = {"Q8_0", "TQ1_0", "TQ2_0", "MXFP4"}


@pytest.mark.parametrize("qtype", ggml_quant.QUANT_TYPES)
def test_importance_lowers_the_weighted_error_for_every_type(wide_models, importance, tmp_path: Path,
                                                              qtype: str) -> None:
    """Every block linear and the output matrix as `qtype`, with the importance vs without (uniform where required)."""
    _hf, f16 = wide_models["untied"]
    vectors = importance["untied"]
    plan = {name: qtype for name in vectors}
    uniform = {name: np.ones_like(v) for name, v in vectors.items()}
    # Types that cannot go without importance (ggml's or llama.cpp's rule) get uniform importance instead.
    must = ggml_quant.requires_importance(qtype) or requires_importance("blk.0.attn_q.weight", qtype)
    without = quantize_with_plan(f16, tmp_path / "plain.gguf", plan, importance=uniform if must else None)
    weighted = quantize_with_plan(f16, tmp_path / "weighted.gguf", plan, importance=vectors)
    assert weighted.with_importance == len(vectors)
    e_plain = _weighted_error(f16, without.path, vectors)
    e_weighted = _weighted_error(f16, weighted.path, vectors)
    if qtype in IGNORES_IMPORTANCE:
        assert e_weighted == e_plain, f"{qtype}: ggml was expected to ignore importance"
    else:
        assert e_weighted < e_plain, f"{qtype}: weighted {e_weighted:.6g} vs plain {e_plain:.6g}"


def test_mix_rules_reproduce_llama_cpps_choice_per_tensor(wide_models, tmp_path: Path) -> None:
    from gguf import GGUFReader

    _hf, f16 = wide_models["untied"]
    for mix in ("Q4_K_M", "Q3_K_M", "Q5_K_M", "Q4_K_S"):
        out = tmp_path / f"{mix}.gguf"
        _llama_quantize(f16, out, mix)
        got = {t.name: t.tensor_type.name for t in GGUFReader(out).tensors}
        assert mix_plan(f16, mix) == got, mix
        assert len(set(got.values())) >= 3, f"{mix} should mix several types on this model"


def test_quantize_rows_rejects_rows_that_do_not_split_into_blocks() -> None:
    with pytest.raises(ConversionError, match="blocks of 256"):
        ggml_quant.quantize_rows("Q4_K", np.zeros((2, 64), dtype=np.float32))
    with pytest.raises(ConversionError, match="needs importance"):
        ggml_quant.quantize_rows("IQ2_XXS", np.zeros((2, 256), dtype=np.float32))


@pytest.mark.parametrize("qtype,weighted", [("Q4_K", False), ("Q8_0", False), ("IQ2_XS", True), ("Q5_0", True)])
def test_threads_split_the_rows_without_changing_a_byte(qtype: str, weighted: bool) -> None:
    """7 rows over 1, 2, 3 and 16 threads (more threads than rows, runs of unequal length): one set of bytes."""
    rng = np.random.default_rng(11)
    rows = rng.standard_normal((7, 512)).astype(np.float32)
    weights = rng.random(512).astype(np.float32) + 0.01 if weighted else None
    one = ggml_quant.quantize_rows(qtype, rows, weights, threads=1)
    row_by_row = np.concatenate([ggml_quant.quantize_rows(qtype, rows[i:i + 1], weights) for i in range(7)])
    assert one.tobytes() == row_by_row.tobytes()
    for threads in (2, 3, 16):
        assert ggml_quant.quantize_rows(qtype, rows, weights, threads=threads).tobytes() == one.tobytes(), threads


def test_quantizer_threads_write_the_same_file(wide_models, tmp_path: Path) -> None:
    _hf, f16 = wide_models["untied"]
    one = quantize_mix(f16, tmp_path / "one.gguf", "Q4_K_M", threads=1)
    three = quantize_mix(f16, tmp_path / "three.gguf", "Q4_K_M", threads=3)
    assert one.path.read_bytes() == three.path.read_bytes()
