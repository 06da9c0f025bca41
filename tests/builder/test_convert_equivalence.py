"""Our GGUF of a tiny random model computes what transformers computes, in real llama.cpp."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_assistant.builder.gguf_index import read_tensor_index

from .llama_run import assert_same_logits, hf_logits, hf_tokenizer, llama_logits, open_llama

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
    "tinyllama": "<s>[INST] Hi there [/INST] Hello </s>",
}



def test_f32_gguf_gives_transformers_logits_at_every_position(tiny) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    family, hf_dir, model_gguf = tiny
    tokenizer = hf_tokenizer(hf_dir)
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    for prompt in PROMPTS:
        ids = tokenizer(prompt)["input_ids"]
        assert_same_logits(llama_logits(model_gguf, ids), hf_logits(model, ids))


def test_llama_cpp_tokenizes_tricky_strings_like_the_hf_tokenizer(tiny) -> None:
    family, hf_dir, model_gguf = tiny
    tokenizer = hf_tokenizer(hf_dir)
    llm = open_llama(model_gguf, vocab_only=True, logits_all=False)
    for text in [*TRICKY, SPECIAL[family]]:
        want = tokenizer(text, add_special_tokens=False)["input_ids"]
        got = llm.tokenize(text.encode(), add_bos=False, special=True)
        assert got == want, f"{text!r}: llama.cpp {got} != HF {want}"
        # With the model's own special-token policy (Llama 3 adds <|begin_of_text|>, SmolLM2 adds nothing).
        assert llm.tokenize(text.encode(), add_bos=True, special=True) == tokenizer(text)["input_ids"]
        # Detokenizing gives the text back, so merges and byte mapping agree too.
        if text in TRICKY:  # (a special token followed by text decodes with SentencePiece's space)
            back = llm.detokenize(got, special=True).decode()
            if family == "tinyllama" and back.startswith(" "):
                back = back[1:]  # llama-cpp-python keeps SentencePiece's prepended space; HF strips it
            assert back == text


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
    ids = hf_tokenizer(smollm_dir)(PROMPTS[1] + PROMPTS[0])["input_ids"]
    reference = llama_logits(smollm_f32, ids)
    got = llama_logits(out, ids)
    assert (got.argmax(-1) == reference.argmax(-1)).mean() >= min_top1


def test_bf16_checkpoint_is_widened_exactly(smollm_dir: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from edge_assistant.builder.convert import convert_hf_to_gguf

    model = AutoModelForCausalLM.from_pretrained(smollm_dir, dtype=torch.bfloat16)
    model.save_pretrained(tmp_path / "bf16")
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        (tmp_path / "bf16" / name).write_bytes((smollm_dir / name).read_bytes())
    out = convert_hf_to_gguf(tmp_path / "bf16", tmp_path / "m.gguf", outtype="f32")
    embd = {t.name: t for t in read_tensor_index(out)}["token_embd.weight"].read(out)
    want = model.model.embed_tokens.weight.float().detach().numpy()
    assert np.array_equal(embd, want)
