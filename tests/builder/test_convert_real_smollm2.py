"""The real SmolLM2-135M-Instruct: GGUF -> transformers -> our f16 GGUF -> llama.cpp agrees
with the original Q4_1 GGUF; quantizing our f16 reports the 576-wide rows' fallbacks;
conversion streams instead of holding the model twice."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edge_assistant.builder.gguf_index import read_tensor_index
from edge_assistant.bundle.ggufmeta import read_gguf_info

from .llama_run import llama_logits, open_llama

pytestmark = [pytest.mark.builder, pytest.mark.real_model, pytest.mark.slow]

HELDOUT = Path(__file__).parent / "data" / "heldout.txt"


def test_our_f16_agrees_with_the_original_q4_1_on_held_out_text(smollm2_gguf: Path, smollm2_f16: Path) -> None:
    text = HELDOUT.read_text()
    ids = open_llama(smollm2_gguf, vocab_only=True, logits_all=False).tokenize(text.encode(), add_bos=False)
    ours = open_llama(smollm2_f16, vocab_only=True, logits_all=False).tokenize(text.encode(), add_bos=False)
    assert ours == ids and len(ids) > 250
    original = llama_logits(smollm2_gguf, ids).argmax(-1)
    converted = llama_logits(smollm2_f16, ids).argmax(-1)
    agreement = float((original == converted).mean())
    print(f"top-1 agreement with the original Q4_1 over {len(ids)} tokens: {agreement:.4f}")
    assert agreement >= 0.95


def test_tokenizer_metadata_is_carried_over_verbatim(smollm2_gguf: Path, smollm2_f16: Path) -> None:
    source = read_gguf_info(smollm2_gguf, keep_arrays=True).metadata
    ours = read_gguf_info(smollm2_f16, keep_arrays=True).metadata
    source_keys = {k for k in source if k.startswith("tokenizer.")}
    assert source_keys and source_keys == {k for k in ours if k.startswith("tokenizer.")}
    assert all(ours[k] == source[k] for k in source_keys)
    assert len(ours["tokenizer.ggml.tokens"]) == 49152  # type: ignore[arg-type]


def test_q4_k_m_reports_every_tensor_whose_rows_cannot_take_k_quant_blocks(smollm2_f16: Path,
                                                                          tmp_path: Path) -> None:
    from edge_assistant.builder.quantize import quantize_gguf

    report = quantize_gguf(smollm2_f16, tmp_path / "q4km.gguf", "Q4_K_M", threads=1)
    matrices = [t for t in read_tensor_index(smollm2_f16) if len(t.shape) == 2]
    misfits = {t.name for t in matrices if t.shape[0] % 256}  # 576-wide rows; ffn_down's 1536 fits
    assert misfits and len(misfits) < len(matrices)
    assert {f.tensor for f in report.fallbacks} == misfits
    actual = {t.name: t.qtype.name for t in read_tensor_index(report.path)}
    for fallback in report.fallbacks:
        assert fallback.got == actual[fallback.tensor] and fallback.wanted != fallback.got
        assert fallback.wanted in ("Q4_K", "Q5_K", "Q6_K")
    n_weights = sum(t.n_elements for t in matrices) + sum(
        t.n_elements for t in read_tensor_index(smollm2_f16) if len(t.shape) == 1)
    assert report.bits_per_weight == pytest.approx(8 * report.size / n_weights, rel=0.05)
    assert 4.0 < report.bits_per_weight < 7.0
    print(report.summary())


# VmHWM (peak resident set of this process image), not ru_maxrss: Linux carries
# ru_maxrss over from the forking parent, here the pytest process holding the model.
_PEAK = textwrap.dedent("""
    import json, re, sys
    from pathlib import Path
    from edge_assistant.builder.convert import convert_hf_to_gguf
    def hwm_kb():
        return int(re.search(r"VmHWM:\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1))
    before = hwm_kb()
    convert_hf_to_gguf(Path(sys.argv[1]), Path(sys.argv[2]), outtype="f16", source_gguf=Path(sys.argv[3]))
    print(json.dumps({"before_kb": before, "after_kb": hwm_kb()}))
""")


def test_conversion_peak_memory_stays_well_under_the_model_size(smollm2_hf: Path, smollm2_gguf: Path,
                                                                tmp_path: Path) -> None:
    size = sum(p.stat().st_size for p in smollm2_hf.glob("*.safetensors"))
    result = subprocess.run([sys.executable, "-c", _PEAK, str(smollm2_hf), str(tmp_path / "m.gguf"),
                             str(smollm2_gguf)], capture_output=True, text=True, check=True)
    peak = json.loads(result.stdout.strip().splitlines()[-1])
    grown = (peak["after_kb"] - peak["before_kb"]) * 1024
    print(f"peak RSS grew by {grown / 1e6:.0f} MB converting {size / 1e6:.0f} MB of safetensors")
    assert grown < 0.6 * size, "conversion should hold about one tensor at a time, not the model"
