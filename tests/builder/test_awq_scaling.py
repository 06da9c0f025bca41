"""AWQ on a tiny random Llama: the float model stays equivalent, the quantized one improves."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from edge_assistant.builder.awq import apply_awq
from edge_assistant.builder.quantsim import fake_quantize, tensor_type
from edge_assistant.cli import main

from .awq_models import calibration_text, heldout_text, tiny_llama, tiny_tokenizer

pytestmark = pytest.mark.builder

SMALL = dict(seq_len=64, search_tokens=512)


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


def _heldout_ids(tokenizer, n: int = 96) -> torch.Tensor:
    ids = tokenizer(heldout_text(), add_special_tokens=False, return_tensors="pt")["input_ids"][0]
    return ids[: 2 * n].reshape(2, n)


def _logits(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


def _quantized_copy(model, qtype: str):
    """The model as llama.cpp would compute it: every block linear rounded like ggml."""
    q = copy.deepcopy(model)
    with torch.no_grad():
        for layer in q.model.layers:
            for lin in (*[getattr(layer.self_attn, n) for n in ("q_proj", "k_proj", "v_proj", "o_proj")],
                        *[getattr(layer.mlp, n) for n in ("gate_proj", "up_proj", "down_proj")]):
                lin.weight.data = fake_quantize(lin.weight.data, tensor_type(qtype, lin.weight.shape[1]))
    return q


@pytest.mark.parametrize("kv_heads", [2, 4], ids=["grouped-query", "multi-head"])
def test_scaling_alone_leaves_float_logits_equivalent(tokenizer, kv_heads: int) -> None:
    model = tiny_llama(kv_heads=kv_heads, outliers=True)
    ids = _heldout_ids(tokenizer)
    before = _logits(model, ids)
    report = apply_awq(model, tokenizer, [calibration_text()], qtype="Q4_0", n_grid=10, clip=False, **SMALL)
    after = _logits(model, ids)
    assert torch.allclose(before, after, atol=1e-4, rtol=0), float((before - after).abs().max())
    # ... and the search did move weights: at least one group chose non-trivial scales.
    assert any(g.alpha > 0 for g in report.groups)
    assert {g.group for g in report.groups} == {"attn_in", "attn_out", "mlp_in", "mlp_out"}


def test_no_group_ends_worse_than_plain_quantization_on_the_calibration_tokens(tokenizer) -> None:
    model = tiny_llama(outliers=True)
    report = apply_awq(model, tokenizer, [calibration_text()], qtype="Q4_0", n_grid=10, clip=False, **SMALL)
    assert all(g.loss_scaled <= g.loss_plain for g in report.groups)
    assert report.mean_error_ratio() < 0.9
    assert len(report.seconds_per_block) == 2 and report.seconds > 0


@pytest.mark.parametrize("qtype,clip", [("Q4_0", False), ("Q4_0", True), ("Q4_1", True)])
def test_awq_brings_quantized_logits_closer_to_float_on_heldout_text(tokenizer, qtype: str, clip: bool) -> None:
    model = tiny_llama(outliers=True, seed=3)
    ids = _heldout_ids(tokenizer)
    reference = _logits(model, ids)
    plain_error = float((_logits(_quantized_copy(model, qtype), ids) - reference).pow(2).mean())
    apply_awq(model, tokenizer, [calibration_text()], qtype=qtype, n_grid=10, clip=clip, **SMALL)
    awq_error = float((_logits(_quantized_copy(model, qtype), ids) - reference).pow(2).mean())
    assert awq_error < 0.8 * plain_error, (awq_error, plain_error)


def test_clipping_changes_the_float_weights_and_reports_how_many_blocks(tokenizer) -> None:
    model = tiny_llama(outliers=True)
    before = model.model.layers[0].mlp.down_proj.weight.detach().clone()
    report = apply_awq(model, tokenizer, [calibration_text()], qtype="Q4_0", n_grid=4, clip=True, **SMALL)
    assert 0.0 < report.clipped_fraction < 1.0
    assert not torch.equal(before, model.model.layers[0].mlp.down_proj.weight)


def test_calibration_text_shorter_than_one_window_is_refused(tokenizer) -> None:
    from edge_assistant.errors import UsageError

    with pytest.raises(UsageError, match="longer calibration text"):
        apply_awq(tiny_llama(), tokenizer, ["too short"], qtype="Q4_0", seq_len=64)


def test_build_awq_writes_a_scaled_folder_that_loads_and_matches(tmp_path: Path, tokenizer) -> None:
    from transformers import AutoModelForCausalLM

    model = tiny_llama(outliers=True)
    src = tmp_path / "hf"
    model.save_pretrained(src)
    tokenizer.save_pretrained(src)
    calib = tmp_path / "calib.txt"
    calib.write_text(calibration_text(), encoding="utf-8")
    out = tmp_path / "scaled"
    result = CliRunner().invoke(main, ["build", "awq", str(src), "--calib", str(calib), "--type", "Q5_0",
                                       "--out", str(out), "--grid", "4", "--no-clip"])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "awq.json").read_text())
    assert record["qtype"] == "Q5_0" and record["n_layers"] == 2
    scaled = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    ids = _heldout_ids(tokenizer, 32)
    assert torch.allclose(_logits(model, ids), _logits(scaled, ids), atol=1e-4, rtol=0)
    assert not torch.equal(model.model.layers[0].input_layernorm.weight, scaled.model.layers[0].input_layernorm.weight)
    assert not list(tmp_path.glob(".scaled.*"))  # no temp folder left behind


def test_build_awq_on_a_folder_without_a_model_fails_with_one_line(tmp_path: Path) -> None:
    calib = tmp_path / "calib.txt"
    calib.write_text("text", encoding="utf-8")
    result = CliRunner().invoke(main, ["build", "awq", str(tmp_path), "--calib", str(calib), "--out",
                                       str(tmp_path / "o")])
    assert result.exit_code != 0
    assert "no config.json" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
def test_importance_from_the_awq_pass_is_what_the_final_model_computes(tokenizer, tied: bool) -> None:
    """The same pass's importance: every block linear's input and the output matrix's, as the scaled model sees them."""
    from edge_assistant.builder.awq import _calibration_ids
    from edge_assistant.builder.importance import Importance, collect_importance

    model = tiny_llama(outliers=True, tied=tied)
    output = "token_embd.weight" if tied else "output.weight"
    stats = Importance()
    apply_awq(model, tokenizer, [calibration_text()], qtype="Q4_0", n_grid=4, clip=True, importance=stats, **SMALL)
    ids = _calibration_ids(tokenizer, [calibration_text()], SMALL["seq_len"], SMALL["search_tokens"])
    ours, again = stats.vectors(), collect_importance(model, ids)
    assert set(ours) == set(again) and output in ours and len(ours) == 2 * 7 + 1
    for name, vec in again.items():
        torch.testing.assert_close(torch.from_numpy(ours[name]), torch.from_numpy(vec), rtol=1e-3, atol=1e-6)
