"""The GGUF carries the chat template and the end-of-turn tokens: llama.cpp renders
the same prompt text as transformers and stops generating at EOS/EOT."""

from __future__ import annotations


import numpy as np
import pytest

from .llama_run import hf_tokenizer, open_llama

pytestmark = pytest.mark.builder

CONVERSATION = [
    {"role": "system", "content": "You answer in one short sentence."},
    {"role": "user", "content": "What is the tallest mountain? 🙂"},
    {"role": "assistant", "content": "Mount Everest, 8849 m."},
    {"role": "user", "content": "And the deepest lake?\n\tThanks!"},
]

# Tokens that must end generation, per tiny model family (EOT first, then the model's other EOS).
STOP_TOKENS = {"llama31": ["<|eot_id|>", "<|end_of_text|>"], "smollm": ["<|im_end|>", "<|endoftext|>"],
               "tinyllama": ["</s>"]}
# The end-of-turn token each family names (Llama 2 style chat has none besides EOS).
EOT = {"llama31": "<|eot_id|>", "smollm": "<|im_end|>", "tinyllama": None}



@pytest.mark.parametrize("messages", [CONVERSATION, CONVERSATION[1:2]], ids=["with-system", "user-only"])
def test_gguf_chat_template_renders_what_the_hf_tokenizer_renders(tiny, messages) -> None:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    family, hf_dir, model_gguf = tiny
    tokenizer = hf_tokenizer(hf_dir)
    llm = open_llama(model_gguf, vocab_only=True, logits_all=False)
    template = llm.metadata["tokenizer.chat_template"]

    def text(token_id: int) -> str:
        return llm.detokenize([token_id], special=True).decode()

    # The same construction llama-cpp-python uses for create_chat_completion (a sandboxed Jinja).
    formatter = Jinja2ChatFormatter(template, eos_token=text(llm.token_eos()), bos_token=text(llm.token_bos()))
    got = formatter(messages=messages).prompt
    want = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert got == want


def _force(token_id: int, after: int):
    """A logits processor that emits ordinary token 10 until ``after`` tokens, then ``token_id``."""
    state = {"n": 0}

    def processor(input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        forced = token_id if state["n"] >= after else 10
        state["n"] += 1
        out = np.full_like(scores, -np.inf)
        out[forced] = 0.0
        return out

    return processor


def test_generation_stops_at_each_end_of_turn_token(tiny) -> None:
    from llama_cpp import LogitsProcessorList
    family, hf_dir, model_gguf = tiny
    tokenizer = hf_tokenizer(hf_dir)
    llm = open_llama(model_gguf, logits_all=False)
    for stop in STOP_TOKENS[family]:
        stop_id = tokenizer.convert_tokens_to_ids(stop)
        out = llm.create_completion("Hello", max_tokens=12, temperature=0.0,
                                    logits_processor=LogitsProcessorList([_force(stop_id, after=3)]))
        choice = out["choices"][0]
        assert choice["finish_reason"] == "stop", stop
        assert out["usage"]["completion_tokens"] == 3, stop
        assert stop not in choice["text"]
    # Control: an ordinary token does not stop generation.
    out = llm.create_completion("Hello", max_tokens=6, temperature=0.0,
                                logits_processor=LogitsProcessorList([_force(10, after=0)]))
    assert out["choices"][0]["finish_reason"] == "length"


def test_gguf_names_eos_and_eot_ids_from_the_tokenizer(tiny) -> None:
    family, hf_dir, model_gguf = tiny
    tokenizer = hf_tokenizer(hf_dir)
    meta = open_llama(model_gguf, vocab_only=True, logits_all=False).metadata
    assert int(meta["tokenizer.ggml.eos_token_id"]) == tokenizer.eos_token_id
    assert int(meta["tokenizer.ggml.bos_token_id"]) == tokenizer.bos_token_id
    if EOT[family] is None:
        assert "tokenizer.ggml.eot_token_id" not in meta
    else:
        assert int(meta["tokenizer.ggml.eot_token_id"]) == tokenizer.convert_tokens_to_ids(EOT[family])
