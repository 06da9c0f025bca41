"""`build eval` scores a real GGUF through llama.cpp."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge_assistant.builder.evaluate import evaluate_gguf
from edge_assistant.cli import main
from edge_assistant.errors import UsageError
from tests.builder.awq_models import heldout_text

pytestmark = [pytest.mark.builder, pytest.mark.real_model]

TOKENS = 200


def test_a_model_against_itself_has_zero_kl_and_full_top1_agreement(smollm2_gguf: Path) -> None:
    result = evaluate_gguf(smollm2_gguf, reference=smollm2_gguf, text=heldout_text(), n_ctx=128, max_tokens=TOKENS)
    assert abs(result.kl_divergence) < 1e-6
    assert result.top1_agreement == 1.0
    assert result.tokens == TOKENS - 2  # windows of 128 and 72: each window's first token has no context
    assert 2.0 < result.perplexity < 200.0 and result.tokens_per_s > 0


def test_shuffled_words_are_far_more_perplexing_than_real_text(smollm2_gguf: Path) -> None:
    text = heldout_text()[:1500]
    words = text.split()
    random.Random(0).shuffle(words)
    real = evaluate_gguf(smollm2_gguf, reference=None, text=text, max_tokens=TOKENS).perplexity
    shuffled = evaluate_gguf(smollm2_gguf, reference=None, text=" ".join(words), max_tokens=TOKENS).perplexity
    assert shuffled > 3 * real, (real, shuffled)


def test_build_eval_json_prints_the_scores(smollm2_gguf: Path, tmp_path: Path) -> None:
    text = tmp_path / "held.txt"
    text.write_text(heldout_text(), encoding="utf-8")
    result = CliRunner().invoke(main, ["build", "eval", str(smollm2_gguf), "--reference", str(smollm2_gguf),
                                       "--text", str(text), "--max-tokens", "64", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == {"perplexity", "kl_divergence", "top1_agreement", "tokens", "tokens_per_s"}
    assert data["tokens"] == 63 and data["top1_agreement"] == 1.0


def test_build_eval_of_a_missing_file_fails_with_one_line(tmp_path: Path) -> None:
    text = tmp_path / "held.txt"
    text.write_text("some text to score", encoding="utf-8")
    result = CliRunner().invoke(main, ["build", "eval", str(tmp_path / "nope.gguf"), "--text", str(text)])
    assert result.exit_code == 2
    assert "not found" in result.output and "Traceback" not in result.output


def test_a_file_that_is_not_gguf_is_a_model_error(tmp_path: Path) -> None:
    from edge_assistant.errors import ModelError

    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf at all" * 10)
    with pytest.raises((ModelError, UsageError), match="bad.gguf"):
        evaluate_gguf(bad, reference=None, text="hello there")
