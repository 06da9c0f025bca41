"""Training speed choices that must not change what is learned: packing, the attention kernel,
gradient checkpointing chosen by memory."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from edge_assistant.builder.base_model import BaseSource
from edge_assistant.builder.dataset import IGNORE_INDEX, Example
from edge_assistant.builder.memory import activation_bytes, choose_checkpointing
from edge_assistant.builder.packing import collate_packed, pack_examples
from edge_assistant.builder.recipe import TrainConfig
from edge_assistant.builder.train import collate, train_lora

pytestmark = [pytest.mark.builder]

VOCAB = 300


def _model(attention: str):  # type: ignore[no-untyped-def]
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         tie_word_embeddings=False, attn_implementation=attention)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # spread the logits so a wrong mask moves the loss visibly
        for p in model.parameters():
            if p.ndim == 2:
                p.normal_(0.0, p.shape[1] ** -0.5)
    model.config.use_cache = False  # as in training: no cache, so transformers reads packed positions
    return model.eval()


def _rows(n: int, seed: int = 0) -> list[Example]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        length = rng.randrange(4, 40)
        ids = [rng.randrange(1, VOCAB) for _ in range(length)]
        prompt = rng.randrange(1, length - 1)  # like a chat row: only the answer carries labels
        rows.append(Example(input_ids=ids, labels=[IGNORE_INDEX] * prompt + ids[prompt:]))
    return rows


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packed_rows_give_the_same_loss_as_padded_rows(attention: str) -> None:
    model = _model(attention)
    rows = _rows(12)
    packed = pack_examples(rows, max_len=128)
    assert 1 < len(packed) < len(rows)  # several rows per sequence, more than one sequence
    with torch.no_grad():
        unpacked_loss = float(model(**collate(rows, pad_id=0)).loss)
        packed_loss = float(model(**collate_packed(packed, pad_id=0)).loss)
    assert packed_loss == pytest.approx(unpacked_loss, rel=1e-5, abs=1e-6)


def test_packing_without_per_row_positions_would_change_the_loss() -> None:
    """The check above can fail: rows that see each other (one running position) give another loss."""
    model = _model("sdpa")
    rows = _rows(12)
    packed = pack_examples(rows, max_len=128)
    batch = collate_packed(packed, pad_id=0)
    batch["position_ids"] = torch.arange(batch["input_ids"].shape[1]).expand_as(batch["input_ids"])
    with torch.no_grad():
        unpacked_loss = float(model(**collate(rows, pad_id=0)).loss)
        leaky_loss = float(model(**batch).loss)
    assert abs(leaky_loss - unpacked_loss) > 1e-3


def test_pack_examples_keeps_every_token_and_never_exceeds_the_length() -> None:
    rows = _rows(30, seed=3)
    packed = pack_examples(rows, max_len=64)
    assert sum(p.rows for p in packed) == len(rows)
    assert all(len(p.input_ids) <= 64 for p in packed)
    assert [t for p in packed for t in p.input_ids] == [t for r in rows for t in r.input_ids]
    starts = [i for p in packed for i, pos in enumerate(p.position_ids) if pos == 0]
    assert len(starts) == len(rows)


def test_one_packed_training_step_learns_what_the_padded_step_learns(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    model_dir = tmp_path / "base"
    _model("sdpa").save_pretrained(model_dir)
    rows = _rows(10, seed=5)
    results = {}
    for packing in (False, True):
        cfg = TrainConfig(batch_size=len(rows), max_seq_len=128, max_steps=1, lora_r=4, lora_alpha=8,
                          target_modules=("q_proj", "v_proj", "down_proj"), dtype="fp32", packing=packing,
                          gradient_checkpointing=False, attention="sdpa", checkpoint_every=10 ** 6,
                          learning_rate=1e-2)
        result = train_lora(BaseSource(location=str(model_dir)), cfg, rows, rows[:3],
                            out_dir=tmp_path / f"run-{packing}", seed=0, pad_id=0, label="t", progress=False,
                            log=lambda s: None)
        results[packing] = (result, load_file(result.adapter_dir / "adapter_model.safetensors"))
    (plain, plain_w), (packed, packed_w) = results[False], results[True]
    assert packed.plan["sequences"] < plain.plan["sequences"]
    assert packed.train_loss[0][1] == pytest.approx(plain.train_loss[0][1], abs=1e-4)
    assert packed.val_loss_after == pytest.approx(plain.val_loss_after, rel=1e-4)
    assert packed.tokens_seen == plain.tokens_seen
    for name, weight in plain_w.items():
        torch.testing.assert_close(packed_w[name], weight, rtol=1e-4, atol=1e-6)


def test_auto_checkpointing_turns_on_only_when_activations_do_not_fit() -> None:
    from transformers import LlamaConfig

    llama8b = LlamaConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, vocab_size=128256)
    tokens = 8 * 2048
    need = activation_bytes(llama8b, tokens, 2, checkpointing=False)
    with_gc = activation_bytes(llama8b, tokens, 2, checkpointing=True)
    assert with_gc < need / 4  # checkpointing keeps one hidden state per layer, not every intermediate
    assert choose_checkpointing("auto", llama8b, tokens, 2, free=2 * need).enabled is False
    assert choose_checkpointing("auto", llama8b, tokens, 2, free=need // 2).enabled is True
    assert choose_checkpointing(True, llama8b, tokens, 2, free=1 << 62).enabled is True
    assert choose_checkpointing(False, llama8b, tokens, 2, free=1).enabled is False
