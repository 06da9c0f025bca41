"""merge.save_model_dir: the new model folder is swapped in whole; a failed save keeps the old one."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest

from edge_assistant.builder.merge import save_model_dir

from .pipeline_fixtures import tiny_llama

pytestmark = [pytest.mark.builder]
__all__ = ["tiny_llama"]  # fixture used by name below


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


class _DiskFullTokenizer:
    """A real tokenizer whose save runs out of disk space after writing part of its files."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def save_pretrained(self, folder: Path) -> None:
        (Path(folder) / "tokenizer.json").write_text('{"truncated": ')
        raise OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture
def model_and_tokenizer(tiny_llama: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_llama), AutoTokenizer.from_pretrained(tiny_llama)


def test_a_save_that_fails_midway_leaves_the_previous_model_folder_intact(
        model_and_tokenizer: tuple[Any, Any], tmp_path: Path) -> None:
    model, tokenizer = model_and_tokenizer
    out = save_model_dir(model, tokenizer, tmp_path / "model")
    (out / "kept.txt").write_text("written by the previous run\n")
    before = _tree(out)

    with pytest.raises(OSError, match="No space left"):
        save_model_dir(model, _DiskFullTokenizer(tokenizer), out)

    assert _tree(out) == before
    assert _hidden(tmp_path) == []


def test_a_completed_save_replaces_the_previous_folder_whole(model_and_tokenizer: tuple[Any, Any],
                                                             tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    model, tokenizer = model_and_tokenizer
    out = tmp_path / "model"
    out.mkdir()
    (out / "stale.safetensors").write_bytes(b"from an older model")

    save_model_dir(model, tokenizer, out)

    assert not (out / "stale.safetensors").exists()
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(_tree(out))
    reloaded = AutoModelForCausalLM.from_pretrained(out)
    assert reloaded.config.num_hidden_layers == model.config.num_hidden_layers
    assert _hidden(tmp_path) == []
