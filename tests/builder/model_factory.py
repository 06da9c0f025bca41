"""Tiny random Llama-family models with real tokenizers, written to disk like a trained model.

Two shapes of the family the converter must handle:
- Llama 3.1 style: the real Llama 3 tokenizer (tiktoken file from `llama-models`,
  turned into a HF tokenizer.json here), llama3 rope scaling, grouped-query
  attention, untied output matrix.
- SmolLM2 style: its own byte-level BPE with SmolLM's digit splitting, ChatML
  special tokens, tied embeddings.
Weights are random but scaled up from the default init so that logits spread
out and top-1 comparisons are meaningful rather than ties.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, pre_tokenizers, processors
from tokenizers.models import BPE
from tokenizers.trainers import BpeTrainer
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# Llama 3.1's template, reduced to system/user/assistant turns (no tools).
LLAMA31_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)

# SmolLM2-Instruct's ChatML template.
CHATML_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def llama3_special_tokens() -> list[str]:
    named = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
             "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|step_id|>",
             "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>",
             "<|python_tag|>", "<|image|>"]
    return named + [f"<|reserved_special_token_{2 + i}|>" for i in range(256 - len(named))]


def llama3_tokenizer() -> PreTrainedTokenizerFast:
    """The Llama 3 tiktoken BPE as a HF fast tokenizer, built the way Meta's tokenizer.json is."""
    import llama_models
    from transformers.convert_slow_tokenizer import TikTokenConverter

    model_file = Path(llama_models.__file__).parent / "llama3" / "tokenizer.model"
    backend: Tokenizer = TikTokenConverter(vocab_file=str(model_file), pattern=LLAMA3_SPLIT,
                                           extra_special_tokens=llama3_special_tokens()).converted()
    bos = backend.token_to_id("<|begin_of_text|>")
    backend.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", bos)]),
    ])
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<|begin_of_text|>",
                                   eos_token="<|eot_id|>", chat_template=LLAMA31_TEMPLATE)


def _training_text() -> list[str]:
    # Offline, deterministic corpus: Python source (code, indentation) plus a few languages.
    import json as json_module
    import textwrap
    texts = [inspect.getsource(json_module.decoder), inspect.getsource(textwrap)]
    texts += ["The quick brown fox jumps over the lazy dog. " * 20,
              "日本語のテキストも少し含めます。東京は日本の首都です。" * 10,
              "Les élèves étudient la géographie et l'histoire. " * 10,
              "Numbers: 3.14159 2718281828 1000000 42 007 " * 10]
    return texts


def smollm_tokenizer(vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """A small byte-level BPE with SmolLM2's pre-tokenizer (digits split one by one) and ChatML tokens."""
    backend = Tokenizer(BPE())
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    backend.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(_training_text(), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   unk_token="<|endoftext|>", pad_token="<|im_end|>", chat_template=CHATML_TEMPLATE)


def _spread_weights(model: LlamaForCausalLM, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.ndim == 1:  # RMSNorm gains: around 1, not all equal, so a wrong norm mapping shows
                param.copy_(1.0 + 0.2 * torch.randn(param.shape, generator=generator))
            else:
                param.copy_(torch.randn(param.shape, generator=generator) / param.shape[1] ** 0.5)


def save_tiny_llama31(folder: Path, tokenizer: PreTrainedTokenizerFast, seed: int = 0) -> Path:
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024, rms_norm_eps=1e-5,
        rope_theta=500000.0, tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        # original context 64 (not 8192) so that short test prompts already exercise every branch
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
    )
    return _save(folder, config, tokenizer, seed)


def save_tiny_smollm(folder: Path, tokenizer: PreTrainedTokenizerFast, seed: int = 1) -> Path:
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048, rms_norm_eps=1e-5,
        rope_theta=10000.0, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    return _save(folder, config, tokenizer, seed)


def _save(folder: Path, config: LlamaConfig, tokenizer: PreTrainedTokenizerFast, seed: int) -> Path:
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    _spread_weights(model, seed)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# Llama 2 / TinyLlama's template ([INST] turns).
LLAMA2_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] + ' ' + eos_token }}{% endif %}{% endfor %}"
)


def sentencepiece_tokenizer(vocab_size: int = 700) -> PreTrainedTokenizerFast:
    """A small BPE laid out like Llama 2's tokenizer.json: ▁ for spaces, byte fallback, <unk>/<s>/</s>."""
    from tokenizers import normalizers

    byte_tokens = [f"<0x{i:02X}>" for i in range(256)]
    backend = Tokenizer(BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    backend.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    backend.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                         decoders.Strip(" ", 1, 0)])
    trainer = BpeTrainer(vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>", *byte_tokens],
                         show_progress=False, limit_alphabet=200)
    lines = [line for text in _training_text() for line in text.splitlines() if line.strip()]
    backend.train_from_iterator(lines, trainer=trainer)
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", backend.token_to_id("<s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   chat_template=LLAMA2_TEMPLATE)


def save_tiny_tinyllama(folder: Path, tokenizer: PreTrainedTokenizerFast, seed: int = 4) -> Path:
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=1, max_position_embeddings=2048, rms_norm_eps=1e-5,
        rope_theta=10000.0, tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    return _save(folder, config, tokenizer, seed)
