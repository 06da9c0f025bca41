"""Importance-requiring quantization without calibration data fails before any work, naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from edge_assistant.cli import main

from .test_pipeline_inputs import _build, _llama_folder, _recipe

pytestmark = pytest.mark.builder


@pytest.mark.parametrize("body, named", [
    ('[phase1]\ndata = ["demo:chat"]\n[quantize]\nqtype = "IQ2_XS"\nawq = false\n', "quantize.qtype"),
    ('[phase1]\ndata = ["demo:chat"]\n[quantize]\nqtype = "IQ3_XXS"\nimportance = false\n', "quantize.importance"),
    ('[phase1]\ndata = ["demo:chat"]\n[quantize]\ntarget_size = "105MB"\nawq = false\n', "quantize.target_size"),
])
def test_a_recipe_needing_importance_without_calibration_fails_naming_the_key(tmp_path: Path, body: str,
                                                                             named: str) -> None:
    _llama_folder(tmp_path / "base")
    code, err = _build(_recipe(tmp_path, body), tmp_path / "out")
    assert code != 0
    assert named in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_no_awq_flag_with_an_importance_type_fails_before_any_work(tmp_path: Path) -> None:
    _llama_folder(tmp_path / "base")
    recipe = _recipe(tmp_path, '[phase1]\ndata = ["demo:chat"]\n[quantize]\nqtype = "IQ2_M"\n')
    result = CliRunner().invoke(main, ["build", str(recipe), "--out", str(tmp_path / "out"), "--no-progress",
                                       "--no-awq"])
    assert result.exit_code != 0
    assert "quantize.qtype IQ2_M needs importance" in result.stderr and "--no-awq" in result.stderr
    assert not (tmp_path / "out").exists()


def test_compress_from_a_folder_without_calib_says_how(tmp_path: Path) -> None:
    _llama_folder(tmp_path / "hf")
    result = CliRunner().invoke(main, ["build", "compress", str(tmp_path / "hf"), "--target-size", "10MB",
                                       "--out", str(tmp_path / "y.gguf")])
    assert result.exit_code != 0
    assert "--calib" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "y.gguf").exists()
