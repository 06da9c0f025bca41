"""`bundle create` accepts exactly the LoRA adapters llama.cpp loads: the same shape rule, token_embd included.

Each adapter is judged twice: by our check (``inspect_adapter``, what `bundle create` runs)
and by llama.cpp itself (``llama_adapter_lora_init`` on the real SmolLM2). They must agree.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import llama_cpp

from edge_assistant.bundle.adapter import inspect_adapter
from edge_assistant.bundle.ggufmeta import read_gguf_info
from edge_assistant.errors import EdgeAssistantError
from edge_assistant.runtime.llama_load import load_llama

N_EMBD, N_VOCAB, RANK = 576, 49152, 4
Q = "blk.0.attn_q.weight"      # GGUF [576, 576]
K = "blk.0.attn_k.weight"      # GGUF [576, 192]
EMBD = "token_embd.weight"     # GGUF [576, 49152]

# name -> {target: (lora_a GGUF shape, lora_b GGUF shape)}
CASES = {
    "q right": {Q: ((N_EMBD, RANK), (RANK, N_EMBD))},
    "k right": {K: ((N_EMBD, RANK), (RANK, 192))},
    "k transposed": {K: ((RANK, N_EMBD), (192, RANK))},
    "k out of a and b swapped": {K: ((N_EMBD, RANK), (RANK, N_EMBD))},
    "token_embd as llama.cpp wants": {EMBD: ((RANK, N_VOCAB), (RANK, N_EMBD))},
    "token_embd like other weights": {EMBD: ((N_EMBD, RANK), (RANK, N_VOCAB))},
    "token_embd wrong vocab": {EMBD: ((RANK, N_VOCAB - 1), (RANK, N_EMBD))},
}


def _write(path: Path, targets: dict[str, tuple[tuple[int, int], tuple[int, int]]]) -> Path:
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_type("adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(RANK))
    rng = np.random.default_rng(0)
    for target, (a, b) in targets.items():
        # numpy shapes are the reverse of GGUF's
        writer.add_tensor(f"{target}.lora_a", (rng.standard_normal(a[::-1]) * 0.01).astype(np.float32))
        writer.add_tensor(f"{target}.lora_b", (rng.standard_normal(b[::-1]) * 0.01).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module")
def model(smollm2_gguf: Path):
    llm = load_llama(str(smollm2_gguf), n_ctx=64, n_threads=1, verbose=False)
    yield llm
    llm.close()


@pytest.mark.parametrize("case", sorted(CASES))
def test_our_check_and_llama_cpp_agree_on_an_adapter(case: str, tmp_path: Path, model, smollm2_gguf: Path) -> None:
    path = _write(tmp_path / "a.gguf", CASES[case])
    base = read_gguf_info(smollm2_gguf, tensors=True)
    try:
        inspect_adapter(path, base)
        ours = True
    except EdgeAssistantError:
        ours = False
    handle = llama_cpp.llama_adapter_lora_init(model.model, str(path).encode())
    theirs = bool(handle)
    if handle:
        llama_cpp.llama_adapter_lora_free(handle)
    assert ours == theirs, f"{case}: bundle create {'accepts' if ours else 'refuses'}, llama.cpp " \
                           f"{'loads' if theirs else 'refuses'}"


def test_the_rank_of_a_token_embedding_adapter_is_read_from_its_first_dimension(tmp_path: Path,
                                                                                 smollm2_gguf: Path) -> None:
    path = _write(tmp_path / "a.gguf", CASES["token_embd as llama.cpp wants"])
    info = inspect_adapter(path, read_gguf_info(smollm2_gguf, tensors=True))
    assert info.rank == RANK and info.targets == (EMBD,)
