"""Small real models for the AWQ tests: a tiny random Llama with a tokenizer trained here,
and the real SmolLM2 turned into a float Hugging Face folder."""

from __future__ import annotations

from pathlib import Path

import torch

DATA = Path(__file__).resolve().parents[2] / "edge_assistant" / "builder" / "data"


def calibration_text() -> str:
    return (DATA / "calibration.txt").read_text(encoding="utf-8")


def heldout_text() -> str:
    return (DATA / "heldout.txt").read_text(encoding="utf-8")


def tiny_tokenizer(vocab_size: int = 300):
    """A real byte-level BPE tokenizer trained on the calibration text (a second or so)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([calibration_text()], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>")


def tiny_llama(*, kv_heads: int = 2, seed: int = 0, vocab_size: int = 300, outliers: bool = False,
               tied: bool = False):
    """A random Llama: hidden 64, 4 heads, `kv_heads` value heads, 2 blocks.

    With `outliers`, a few channels of every RMSNorm are made 12x larger: the
    activation outliers real LLMs have and random initialisation lacks, which is
    what AWQ is for.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=kv_heads, max_position_embeddings=256,
                      tie_word_embeddings=tied)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        for layer in model.model.layers:
            for norm in (layer.input_layernorm, layer.post_attention_layernorm):
                norm.weight.mul_(1.0 + 0.3 * torch.rand_like(norm.weight))
                if outliers:
                    norm.weight[torch.randperm(64)[:4]] *= 12.0
    return model


def smollm2_hf_dir(gguf: Path, out: Path) -> Path:
    """SmolLM2 dequantized to float32 by transformers' GGUF loader, saved as a plain HF folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The GGUF loader marks the model as "quantized with gguf"; its weights are plain floats now.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
