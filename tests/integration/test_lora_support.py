"""The random LoRA adapters tests/support writes load in real llama.cpp on the real SmolLM2,
and the shape rule bundle create enforces is the one llama.cpp enforces."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from tests.support.lora import write_random_lora

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def model(smollm2_gguf: Path) -> Iterator[object]:
    import llama_cpp

    llama_cpp.llama_backend_init()
    from edge_assistant.runtime.llama_load import model_params

    params = model_params()
    params.n_gpu_layers = 0
    handle = llama_cpp.llama_model_load_from_file(str(smollm2_gguf).encode(), params)
    assert handle, "llama.cpp could not load SmolLM2"
    yield handle
    llama_cpp.llama_model_free(handle)


def _init(model: object, adapter: Path) -> object:
    import llama_cpp

    return llama_cpp.llama_adapter_lora_init(model, str(adapter).encode())


@pytest.mark.parametrize("targets", [("attn_q", "attn_v"), ("attn_q", "attn_k", "attn_v", "attn_output",
                                                          "ffn_gate", "ffn_up", "ffn_down")])
def test_a_random_lora_loads_in_llama_cpp(model: object, smollm2_gguf: Path, tmp_path: Path,
                                          targets: tuple[str, ...]) -> None:
    import llama_cpp

    adapter = write_random_lora(tmp_path / "a.gguf", smollm2_gguf, rank=16, targets=targets)
    handle = _init(model, adapter)
    assert handle, "llama_adapter_lora_init returned NULL"
    llama_cpp.llama_adapter_lora_free(handle)


def test_llama_cpp_refuses_the_shape_mismatch_bundle_create_refuses(model: object, tmp_path: Path) -> None:
    import gguf

    path = tmp_path / "wrong.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_type("adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", 16.0)
    writer.add_tensor("blk.0.attn_q.weight.lora_a", np.zeros((8, 960), dtype=np.float32))
    writer.add_tensor("blk.0.attn_q.weight.lora_b", np.zeros((960, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert not _init(model, path)
