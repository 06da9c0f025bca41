"""Bad input fails before any training, with a message naming the file, line or key; recipe arithmetic."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge_assistant.cli import main

pytestmark = pytest.mark.builder


def _recipe(folder: Path, body: str, base: str = "base") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "r.toml"
    path.write_text(f'name = "bad"\n[base]\nmodel = "{base}"\n' + body, encoding="utf-8")
    return path


def _llama_folder(folder: Path, model_type: str = "llama") -> Path:
    # Only config.json: the checks that must fail first never get as far as loading weights.
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": model_type}), encoding="utf-8")
    return folder


def _build(recipe: Path, out: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["build", str(recipe), "--out", str(out), "--no-progress"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stderr


def test_a_missing_data_file_fails_naming_the_file(tmp_path: Path) -> None:
    _llama_folder(tmp_path / "base")
    recipe = _recipe(tmp_path, '[phase1]\ndata = ["missing-chat.jsonl"]\n')
    code, err = _build(recipe, tmp_path / "out")
    assert code != 0
    assert "missing-chat.jsonl" in err and "not found" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_malformed_jsonl_row_fails_with_file_and_line_before_training(tmp_path: Path) -> None:
    _llama_folder(tmp_path / "base")
    good = json.dumps({"prompt": "hi", "response": "hello"})
    (tmp_path / "chat.jsonl").write_text("\n".join([good, good, '{"prompt": "no answer"', good]) + "\n")
    recipe = _recipe(tmp_path, '[phase1]\ndata = ["chat.jsonl"]\n')
    code, err = _build(recipe, tmp_path / "out")
    assert code != 0
    assert re.search(r"chat\.jsonl:3: not valid JSON", err), err
    assert not (tmp_path / "out" / "phase1").exists()


def test_a_row_without_an_answer_fails_with_file_and_line(tmp_path: Path) -> None:
    _llama_folder(tmp_path / "base")
    rows = [{"prompt": "hi", "response": "hello"}, {"messages": [{"role": "user", "content": "only a question"}]}]
    (tmp_path / "chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = _recipe(tmp_path, '[phase1]\ndata = ["chat.jsonl"]\n')
    code, err = _build(recipe, tmp_path / "out")
    assert code != 0 and "chat.jsonl:2: no assistant message" in err


def test_a_typo_in_a_recipe_key_fails_naming_the_key_and_the_closest_one(tmp_path: Path) -> None:
    _llama_folder(tmp_path / "base")
    recipe = _recipe(tmp_path, '[phase1]\ndata = ["demo:chat"]\nlearning_rte = 1e-3\n')
    code, err = _build(recipe, tmp_path / "out")
    assert code != 0
    assert "unknown key 'phase1.learning_rte'" in err and "did you mean 'learning_rate'" in err
    assert str(recipe) in err


def test_a_typo_in_a_modifier_override_fails_before_phase1(tmp_path: Path) -> None:
    _llama_folder(tmp_path / "base")
    recipe = _recipe(tmp_path, '[phase1]\ndata = ["demo:chat"]\n[[modifiers]]\nname = "code"\n'
                               'data = ["demo:code"]\ntrain = { max_step = 3 }\n')
    code, err = _build(recipe, tmp_path / "out")
    assert code != 0 and "max_step" in err and "did you mean 'max_steps'" in err


def test_an_unknown_modifier_kind_fails_naming_the_key_before_phase1(tmp_path: Path) -> None:
    _llama_folder(tmp_path / "base")
    recipe = _recipe(tmp_path, '[phase1]\ndata = ["demo:chat"]\n[[modifiers]]\nname = "code"\n'
                               'data = ["demo:code"]\nkind = "qlora"\n')
    code, err = _build(recipe, tmp_path / "out")
    assert code != 0
    assert "modifiers.code.kind 'qlora'" in err and "lora, alora" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out" / "data").exists()


def test_a_modifier_is_a_plain_lora_unless_the_recipe_says_alora(tmp_path: Path) -> None:
    from edge_assistant.builder.recipe import load_recipe

    _llama_folder(tmp_path / "base")
    recipe = load_recipe(_recipe(tmp_path, '[phase1]\nenabled = false\n[[modifiers]]\nname = "code"\n'
                                           'data = ["demo:code"]\n[[modifiers]]\nname = "shell"\n'
                                           'data = ["demo:automation"]\nkind = "alora"\n'))
    assert [m.kind for m in recipe.modifiers] == ["lora", "alora"]


def test_a_base_that_is_not_llama_family_fails_naming_the_key(tmp_path: Path) -> None:
    _llama_folder(tmp_path / "base", model_type="gpt2")
    recipe = _recipe(tmp_path, '[phase1]\ndata = ["demo:chat"]\n')
    code, err = _build(recipe, tmp_path / "out")
    assert code != 0
    assert "base.model" in err and "'gpt2'" in err and "not Llama-family" in err
    assert not (tmp_path / "out" / "data").exists()


def test_a_gguf_base_that_is_not_llama_family_fails_from_its_header(tmp_path: Path) -> None:
    import gguf

    path = tmp_path / "phi.gguf"
    writer = gguf.GGUFWriter(str(path), "phi2")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    recipe = _recipe(tmp_path, '[phase1]\ndata = ["demo:chat"]\n', base="phi.gguf")
    code, err = _build(recipe, tmp_path / "out")
    assert code != 0 and "'phi2'" in err and "base.model" in err


def test_an_unknown_stage_name_is_refused_with_the_closest_stage(tmp_path: Path) -> None:
    _llama_folder(tmp_path / "base")
    recipe = _recipe(tmp_path, '[phase1]\ndata = ["demo:chat"]\n')
    result = CliRunner().invoke(main, ["build", str(recipe), "--out", str(tmp_path / "o"), "--from", "quantise"])
    assert result.exit_code == 2 and "did you mean 'quantize'" in result.stderr


def test_the_plan_shows_tokens_per_step_and_steps_per_epoch() -> None:
    from edge_assistant.builder.recipe import TrainConfig, plan_lines, steps_for

    cfg = TrainConfig(batch_size=4, grad_accum=2, max_seq_len=256, epochs=2.0)
    assert steps_for(cfg, 100, world_size=2) == (7, 14)  # 100 rows / (4*2*2) -> 7 steps/epoch
    text = "\n".join(plan_lines("phase1", cfg, 100, world_size=2))
    assert "16 rows/step" in text and "4096 tokens/step" in text and "7 steps/epoch" in text


def test_the_shipped_recipes_load() -> None:
    from edge_assistant.builder.recipe import load_recipe

    root = Path(__file__).resolve().parents[2] / "recipes"
    demo = load_recipe(root / "demo-cpu.toml")
    assert [m.name for m in demo.modifiers] == ["code", "reasoning", "automation"]
    big = load_recipe(root / "llama-3.1-8b.toml")
    assert big.base.model == "meta-llama/Meta-Llama-3.1-8B-Instruct"
    assert big.modifier_train(big.modifiers[0]).lora_r == 64 and big.phase1.lora_r == 64
    assert big.phase1.dtype == "bf16" and len(big.modifiers) == 3
