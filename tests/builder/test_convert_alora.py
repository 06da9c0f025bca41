"""An activated LoRA (peft aLoRA) converted by us gives, in llama.cpp on top of our base GGUF, the logits
peft gives in transformers, when llama.cpp reads the conversation up to the last invocation with the base
alone and the rest with the adapter (the run-time path); the invocation sequence comes from the template."""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest

from edge_assistant.builder.alora import activated_examples, invocation_tokens
from edge_assistant.builder.dataset import IGNORE_INDEX, render, tokenize_example
from edge_assistant.builder.lora_convert import convert_lora_to_gguf
from edge_assistant.bundle.ggufmeta import ALORA_INVOCATION_KEY, read_gguf_info
from edge_assistant.errors import BuildError, ConversionError
from edge_assistant.runtime.alora import invocation_start

from .llama_run import assert_same_logits, hf_logits, hf_tokenizer, open_llama

pytestmark = pytest.mark.builder

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# Two assistant turns: peft and llama.cpp must both activate at the *last* opener, not the first.
CONVERSATION = [
    {"role": "system", "content": "You answer in one line."},
    {"role": "user", "content": "What does json.loads return for '[1, 2]'?"},
    {"role": "assistant", "content": "A list: [1, 2]."},
    {"role": "user", "content": "And for '{}'? 12345 🙂"},
    {"role": "assistant", "content": "An empty dict."},
]


def _alora_model(hf_dir: Path, invocation: list[int], *, seed: int = 7):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=8.0, target_modules=TARGETS, lora_dropout=0.0, bias="none",
                        task_type="CAUSAL_LM", alora_invocation_tokens=invocation)
    model = get_peft_model(base, config).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        # Random A and B so every target matters. 0.15, not the LoRA test's 0.3: on the SmolLM-shaped model
        # 0.3 makes even a plain LoRA miss 1e-3 of the range (5.9e-3 measured) from float32 rounding alone.
        # Float16 values, as the GGUF adapter stores them.
        for name, param in model.named_parameters():
            if "lora_A" in name or "lora_B" in name:
                param.copy_((torch.randn(param.shape, generator=generator) * 0.15).half().float())
    return model


def _peft_start(model, ids: list[int]) -> int:
    """Where peft itself turns the adapter on for ``ids`` (its offset counts back from the end)."""
    import torch
    from peft.tuners.lora.variants import calculate_alora_offsets

    (offset,) = calculate_alora_offsets(model.peft_config, model.active_adapter, torch.tensor([ids]))
    assert offset is not None, "peft found no invocation in the conversation"
    return len(ids) - offset


def _llama_split_logits(gguf: Path, ids: list[int], adapter: Path | None, start: int) -> tuple[np.ndarray, list[int]]:
    """llama.cpp logits with no adapter for ids[:start] and ``adapter`` for ids[start:], set per batch
    on one context (the KV cache of the prefix is kept); also the invocation llama.cpp read from the file."""
    import llama_cpp

    llm = open_llama(gguf, n_ctx=max(64, len(ids)))
    try:
        read_back: list[int] = []
        handle = None
        if adapter is not None:
            handle = llama_cpp.llama_adapter_lora_init(llm._model.model, str(adapter).encode())
            assert handle, f"llama.cpp refused the adapter {adapter}"
            n = llama_cpp.llama_adapter_get_alora_n_invocation_tokens(handle)
            tokens = llama_cpp.llama_adapter_get_alora_invocation_tokens(handle)
            read_back = [int(tokens[i]) for i in range(n)]
        llama_cpp.llama_set_adapters_lora(llm._ctx.ctx, None, 0, None)
        if start:
            llm.eval(ids[:start])
        if handle is not None:
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(handle)
            scales = (ctypes.c_float * 1)(1.0)
            assert llama_cpp.llama_set_adapters_lora(llm._ctx.ctx, adapters, 1, scales) == 0
        llm.eval(ids[start:])
        return np.array(llm.scores[: len(ids)], dtype=np.float32), read_back
    finally:
        llm.close()


@pytest.fixture(scope="module", params=["smollm", "llama31"])
def alora(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """(model, peft folder, HF folder, base GGUF, conversation ids, invocation) per template family."""
    hf_dir = request.getfixturevalue(f"{request.param}_dir")
    gguf = request.getfixturevalue(f"{request.param}_f32")
    tokenizer = hf_tokenizer(hf_dir)
    invocation = invocation_tokens(tokenizer)
    model = _alora_model(hf_dir, invocation)
    folder = tmp_path_factory.mktemp(f"alora-{request.param}")
    model.save_pretrained(folder)
    ids = list(tokenizer(render(tokenizer, CONVERSATION), add_special_tokens=False)["input_ids"])
    return model, folder, hf_dir, gguf, ids, invocation


def test_the_invocation_is_the_templates_assistant_turn_opener(smollm_dir: Path, llama31_dir: Path) -> None:
    smollm, llama31 = hf_tokenizer(smollm_dir), hf_tokenizer(llama31_dir)
    assert smollm.decode(invocation_tokens(smollm)) == "<|im_start|>assistant\n"
    assert llama31.decode(invocation_tokens(llama31)) == "<|start_header_id|>assistant<|end_header_id|>\n\n"


def test_a_template_without_a_generation_prompt_has_no_invocation(tinyllama_dir: Path) -> None:
    with pytest.raises(BuildError, match="no generation prompt") as info:
        invocation_tokens(hf_tokenizer(tinyllama_dir))
    assert 'kind = "lora"' in (info.value.hint or "")


def test_alora_in_llama_cpp_gives_peft_logits_with_the_prefix_read_by_the_base(alora, tmp_path: Path) -> None:
    model, folder, _hf_dir, gguf, ids, invocation = alora
    adapter = convert_lora_to_gguf(folder, gguf, tmp_path / "alora.gguf")
    start = _peft_start(model, ids)
    # The conversation has two openers; peft picks the last one, as does our run-time helper.
    first = next(i for i in range(len(ids)) if ids[i:i + len(invocation)] == invocation)
    assert first < start == invocation_start(ids, invocation)
    want = hf_logits(model, ids)
    base, _ = _llama_split_logits(gguf, ids, None, 0)
    # The adapter must matter from the invocation on, and peft must leave the prefix to the base.
    assert np.abs(want[start:] - base[start:]).max() > 0.5
    got, read_back = _llama_split_logits(gguf, ids, adapter, start)
    assert read_back == invocation  # llama.cpp parsed adapter.alora.invocation_tokens as written
    assert_same_logits(got, want)


def test_the_activation_position_matters_exactly(alora, tmp_path: Path) -> None:
    """The comparison above would fail if the adapter were on for every token, or from one token later."""
    model, folder, _hf_dir, gguf, ids, _invocation = alora
    adapter = convert_lora_to_gguf(folder, gguf, tmp_path / "alora.gguf")
    start = _peft_start(model, ids)
    want = hf_logits(model, ids)
    spread = float(want.max() - want.min())
    everywhere, _ = _llama_split_logits(gguf, ids, adapter, 0)
    late, _ = _llama_split_logits(gguf, ids, adapter, start + 1)
    assert np.abs(everywhere[:start] - want[:start]).max() > 1e-3 * spread
    assert np.abs(late[start:] - want[start:]).max() > 1e-3 * spread


def test_the_held_out_scorer_applies_an_alora_as_peft_does(alora, tmp_path: Path) -> None:
    from edge_assistant.builder.heldout import HeldoutScorer, ScoredText

    model, folder, hf_dir, gguf, ids, _invocation = alora
    tokenizer = hf_tokenizer(hf_dir)
    adapter = convert_lora_to_gguf(folder, gguf, tmp_path / "alora.gguf")
    text = ScoredText(prompt=render(tokenizer, CONVERSATION[:-1], add_generation_prompt=True),
                      full=render(tokenizer, CONVERSATION))
    answer = len(tokenizer(text.prompt, add_special_tokens=False)["input_ids"])
    logits = hf_logits(model, ids).astype(np.float64)
    peak = logits.max(-1, keepdims=True)
    logprobs = logits - peak - np.log(np.exp(logits - peak).sum(-1, keepdims=True))
    want = -sum(logprobs[i - 1, ids[i]] for i in range(answer, len(ids)))
    with HeldoutScorer(gguf, n_ctx=256) as scorer:
        scorer.use_adapter(adapter)
        got, n = scorer.score(text)
        scorer.use_adapter(None)
        plain, _ = scorer.score(text)
    assert n == len(ids) - answer > 0
    assert got == pytest.approx(want, rel=1e-3)
    assert abs(plain - want) > 1e-2 * abs(want)  # the adapter changes the answer's NLL


def test_the_adapter_gguf_carries_the_invocation_as_llama_cpp_reads_it(alora, tmp_path: Path) -> None:
    import gguf

    _model, folder, hf_dir, base_gguf, _ids, invocation = alora
    for base in (base_gguf, hf_dir):  # against the GGUF base or the HF folder: same key
        out = convert_lora_to_gguf(folder, base, tmp_path / f"{Path(base).name}.gguf")
        assert read_gguf_info(out, keep_arrays=True).metadata[ALORA_INVOCATION_KEY] == invocation
        field = gguf.GGUFReader(out).fields[ALORA_INVOCATION_KEY]
        assert field.types == [gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.UINT32]


def test_an_invocation_outside_the_base_vocabulary_is_refused(alora, tmp_path: Path) -> None:
    import json
    import shutil

    _model, folder, _hf_dir, gguf, _ids, _invocation = alora
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    config = json.loads((bad / "adapter_config.json").read_text())
    for tokens, fragment in (([10 ** 6], "outside the base"), ([], "non-empty list"), (["x"], "non-empty list")):
        config["alora_invocation_tokens"] = tokens
        (bad / "adapter_config.json").write_text(json.dumps(config))
        with pytest.raises(ConversionError, match=fragment):
            convert_lora_to_gguf(bad, gguf, tmp_path / "out.gguf")
        assert not (tmp_path / "out.gguf").exists()


def test_training_rows_learn_only_where_peft_turns_the_adapter_on(alora) -> None:
    model, _folder, hf_dir, _gguf, _ids, invocation = alora
    tokenizer = hf_tokenizer(hf_dir)
    example = tokenize_example(tokenizer, CONVERSATION, 512)
    start = _peft_start(model, example.input_ids)
    (kept,), dropped = activated_examples([example], invocation)
    assert dropped == 0
    assert all(label == IGNORE_INDEX for label in kept.labels[:start])
    assert kept.labels[start:] == example.labels[start:]
    # Both answers were labelled before; only the second (after the last opener) is left.
    assert any(label != IGNORE_INDEX for label in example.labels[:start])
    # Cut right after the last opener: its answer is gone, the first answer is before it: nothing to learn.
    cut = tokenize_example(tokenizer, CONVERSATION, start + len(invocation))
    assert any(label != IGNORE_INDEX for label in cut.labels)
    assert activated_examples([cut], invocation) == ([], 1)


def test_our_activation_point_is_peft_s_on_random_sequences() -> None:
    import random

    import torch
    from peft import LoraConfig
    from peft.tuners.lora.variants import calculate_alora_offsets

    rng = random.Random(0)
    invocation = [3, 1, 3]
    config = {"default": LoraConfig(alora_invocation_tokens=invocation, task_type="CAUSAL_LM")}
    for _ in range(300):
        seq = [rng.choice([1, 2, 3]) for _ in range(rng.randint(0, 12))]
        (offset,) = calculate_alora_offsets(config, "default", torch.tensor([seq or [0]]))
        want = None if offset is None or not seq else len(seq) - offset
        assert invocation_start(seq, invocation) == want, seq
