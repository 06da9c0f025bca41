"""Our GGUF of a tiny random model computes what transformers computes, in real llama.cpp."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_assistant.builder.gguf_index import read_tensor_index

from .llama_run import assert_same_logits, hf_logits, llama_logits, open_llama

pytestmark = pytest.mark.builder

PROMPTS = [
    "The capital of France is Paris, and the capital of Japan is",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
    "Numbers 1234567890 and 3.14159, emoji 🙂, 日本語のテキスト, tabs\tand  spaces.",
]

# Strings where tokenizers usually disagree: multi-byte characters, digit runs,
# whitespace runs, indentation, contractions, leading spaces.
TRICKY = [
    "Hello world",
    " leading space, and  double  spaces",
    "emoji 🙂👍🏽 and a flag 🇫🇷 and a family 👨‍👩‍👧",
    "中文字符和日本語のテキスト、한국어 텍스트",
    "digits 1234567890 3.14159 00042 1,000,000",
    "def f(x):\n\tif x:\n\t\treturn x  # tab\n    else:\n        pass\n",
    "trailing spaces   \n\n\n   \t",
    "don't I'LL we're they've YOU'D",
    "façade naïve coöperate ÅÉÎ ǅ",
    "",
]

SPECIAL = {
    "llama31": "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>",
    "smollm": "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
}


def _family(hf_dir: Path) -> str:
    return "llama31" if (hf_dir / "config.json").read_text().count("llama3") else "smollm"


def test_f32_gguf_gives_transformers_logits_at_every_position(tiny: tuple[Path, Path]) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hf_dir, model_gguf = tiny
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    for prompt in PROMPTS:
        ids = tokenizer(prompt)["input_ids"]
        assert_same_logits(llama_logits(model_gguf, ids), hf_logits(model, ids))


def test_llama_cpp_tokenizes_tricky_strings_like_the_hf_tokenizer(tiny: tuple[Path, Path]) -> None:
    from transformers import AutoTokenizer

    hf_dir, model_gguf = tiny
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    llm = open_llama(model_gguf, vocab_only=True, logits_all=False)
    for text in [*TRICKY, SPECIAL[_family(hf_dir)]]:
        want = tokenizer(text, add_special_tokens=False)["input_ids"]
        got = llm.tokenize(text.encode(), add_bos=False, special=True)
        assert got == want, f"{text!r}: llama.cpp {got} != HF {want}"
        # With the model's own special-token policy (Llama 3 adds <|begin_of_text|>, SmolLM2 adds nothing).
        assert llm.tokenize(text.encode(), add_bos=True, special=True) == tokenizer(text)["input_ids"]
        # Detokenizing gives the text back, so merges and byte mapping agree too.
        assert llm.detokenize(got, special=True).decode() == text


def test_llama3_rope_freqs_tensor_matches_transformers_scaled_frequencies(llama31_dir: Path,
                                                                          llama31_f32: Path) -> None:
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    config = LlamaConfig.from_pretrained(llama31_dir)
    scaled, _ = ROPE_INIT_FUNCTIONS["llama3"](config, "cpu")
    head_dim = config.hidden_size // config.num_attention_heads
    theta = config.rope_parameters["rope_theta"]
    plain = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    tensors = {t.name: t for t in read_tensor_index(llama31_f32)}
    factors = tensors["rope_freqs.weight"].read(llama31_f32).astype(np.float64)
    # llama.cpp divides each frequency by its factor.
    np.testing.assert_allclose(plain / factors, scaled.numpy(), rtol=1e-5)
    assert len(set(np.round(factors, 4))) > 2, "the test model should exercise kept, scaled and blended bands"


def test_tied_model_has_no_output_tensor_and_untied_model_has_one(smollm_f32: Path, llama31_f32: Path) -> None:
    tied = {t.name for t in read_tensor_index(smollm_f32)}
    untied = {t.name for t in read_tensor_index(llama31_f32)}
    assert "output.weight" not in tied and "token_embd.weight" in tied
    assert "output.weight" in untied


@pytest.mark.parametrize("outtype, weight_type, min_top1", [
    ("f16", "F16", 0.97), ("bf16", "BF16", 0.9), ("q8_0", "Q8_0", 0.9)])
def test_smaller_outtypes_store_weights_in_that_type_and_keep_predictions(
        outtype: str, weight_type: str, min_top1: float, smollm_dir: Path, smollm_f32: Path,
        tmp_path: Path) -> None:
    from edge_assistant.builder.convert import convert_hf_to_gguf

    out = convert_hf_to_gguf(smollm_dir, tmp_path / f"m.{outtype}.gguf", outtype=outtype)
    types = {t.name: t.qtype.name for t in read_tensor_index(out)}
    assert types["blk.0.attn_q.weight"] == weight_type and types["token_embd.weight"] == weight_type
    assert types["blk.0.attn_norm.weight"] == "F32" and types["output_norm.weight"] == "F32"
    from transformers import AutoTokenizer

    ids = AutoTokenizer.from_pretrained(smollm_dir)(PROMPTS[1] + PROMPTS[0])["input_ids"]
    reference = llama_logits(smollm_f32, ids)
    got = llama_logits(out, ids)
    assert (got.argmax(-1) == reference.argmax(-1)).mean() >= min_top1
