"""Fixtures for converter tests: tiny random models with real tokenizers, made once per session."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest



@pytest.fixture(scope="session")
def llama31_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama-3.1-style HF folder: Llama 3 tokenizer, llama3 rope scaling, GQA, untied."""
    from .model_factory import llama3_tokenizer, save_tiny_llama31

    return save_tiny_llama31(tmp_path_factory.mktemp("llama31-hf"), llama3_tokenizer())


@pytest.fixture(scope="session")
def smollm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SmolLM2-style HF folder: its own byte-level BPE, ChatML tokens, tied embeddings."""
    from .model_factory import save_tiny_smollm, smollm_tokenizer

    return save_tiny_smollm(tmp_path_factory.mktemp("smollm-hf"), smollm_tokenizer())


@pytest.fixture(scope="session")
def llama31_f32(llama31_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edge_assistant.builder.convert import convert_hf_to_gguf

    return convert_hf_to_gguf(llama31_dir, tmp_path_factory.mktemp("llama31-gguf") / "model.f32.gguf",
                              outtype="f32")


@pytest.fixture(scope="session")
def smollm_f32(smollm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edge_assistant.builder.convert import convert_hf_to_gguf

    return convert_hf_to_gguf(smollm_dir, tmp_path_factory.mktemp("smollm-gguf") / "model.f32.gguf",
                              outtype="f32")


@pytest.fixture(scope="session")
def tinyllama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama-2/TinyLlama-style HF folder: SentencePiece-style BPE (▁, byte fallback), MQA, untied."""
    from .model_factory import save_tiny_tinyllama, sentencepiece_tokenizer

    return save_tiny_tinyllama(tmp_path_factory.mktemp("tinyllama-hf"), sentencepiece_tokenizer())


@pytest.fixture(scope="session")
def tinyllama_f32(tinyllama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edge_assistant.builder.convert import convert_hf_to_gguf

    return convert_hf_to_gguf(tinyllama_dir, tmp_path_factory.mktemp("tinyllama-gguf") / "model.f32.gguf",
                              outtype="f32")


class Tiny(NamedTuple):
    family: str     # llama31 | smollm | tinyllama
    hf_dir: Path
    gguf: Path      # our f32 conversion


@pytest.fixture(params=["llama31", "smollm", "tinyllama"])
def tiny(request: pytest.FixtureRequest) -> Tiny:
    """Each tiny model family with its HF folder and our f32 GGUF."""
    family = request.param
    return Tiny(family, request.getfixturevalue(f"{family}_dir"), request.getfixturevalue(f"{family}_f32"))


@pytest.fixture(scope="session")
def smollm2_hf(smollm2_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real SmolLM2 GGUF loaded by transformers (dequantized) and saved as a safetensors folder."""
    import torch
    from transformers import AutoModelForCausalLM

    from tests.support.hf_checkpoint import save_hf_checkpoint

    model = AutoModelForCausalLM.from_pretrained(smollm2_gguf.parent, gguf_file=smollm2_gguf.name,
                                                 dtype=torch.float32)
    folder = save_hf_checkpoint(model, None, tmp_path_factory.mktemp("smollm2-hf"))
    del model
    return folder


@pytest.fixture(scope="session")
def smollm2_f16(smollm2_hf: Path, smollm2_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Our f16 GGUF of the transformers-loaded SmolLM2, tokenizer carried over from the source GGUF."""
    from edge_assistant.builder.convert import convert_hf_to_gguf

    return convert_hf_to_gguf(smollm2_hf, tmp_path_factory.mktemp("smollm2-gguf") / "smollm2.f16.gguf",
                              outtype="f16", source_gguf=smollm2_gguf)
