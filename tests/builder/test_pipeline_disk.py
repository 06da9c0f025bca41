"""Disk: the modifiers' dequantized base copy goes when the build finishes; a stage that would not
fit on the disk stops the build before it writes anything."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edge_assistant.builder import stages
from edge_assistant.builder.disk import DEQUANTIZED_PREFIX
from edge_assistant.builder.pipeline import run_build
from edge_assistant.builder.recipe import load_recipe
from edge_assistant.errors import BuildError

from .pipeline_fixtures import router_embedding_dir, tiny_llama, tiny_recipe_text, write_recipe

pytestmark = [pytest.mark.builder, pytest.mark.slow]
__all__ = ["router_embedding_dir", "tiny_llama"]


def test_the_dequantized_base_copy_is_kept_with_the_flag_and_removed_when_a_build_finishes(
        tiny_llama: Path, router_embedding_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = load_recipe(write_recipe(tmp_path, tiny_recipe_text(tiny_llama, router_embedding_dir,
                                                                  modifier_steps=2)))
    out = tmp_path / "out"
    made: list[Path] = []
    real = stages._dequantized_base

    def spy(ctx, run, base):  # type: ignore[no-untyped-def]
        source = real(ctx, run, base)
        made.append(Path(source.location))
        return source

    monkeypatch.setattr(stages, "_dequantized_base", spy)
    run_build(recipe, out, until_stage="modifiers", keep_intermediates=True, progress=False, log=lambda s: None)
    assert made, "the modifiers stage trained without a dequantized base"
    kept = sorted((out / "modifiers").glob(f"{DEQUANTIZED_PREFIX}*"))
    assert kept == [made[0]] and (made[0] / "config.json").is_file()

    log: list[str] = []
    run_build(recipe, out, until_stage="modifiers", progress=False, log=log.append)  # every stage unchanged
    assert not list((out / "modifiers").glob(f"{DEQUANTIZED_PREFIX}*"))
    assert any("dequantized base copy" in line and "--keep-intermediates" in line for line in log)
    for m in recipe.modifiers:  # the modifiers themselves stay
        assert (out / "modifiers" / m.name / f"{m.name}.gguf").is_file()


def test_a_stage_that_does_not_fit_on_the_disk_stops_before_it_starts(
        tiny_llama: Path, router_embedding_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = load_recipe(write_recipe(tmp_path, tiny_recipe_text(tiny_llama, router_embedding_dir)))
    out = tmp_path / "out"
    real_usage = shutil.disk_usage

    def usage(path):  # type: ignore[no-untyped-def]
        # The disk "fills up" once the merge stage has finished: convert must not start.
        if (out / "merge" / "record.json").is_file():
            return real_usage(path)._replace(free=10 << 20)
        return real_usage(path)

    monkeypatch.setattr(shutil, "disk_usage", usage)
    with pytest.raises(BuildError) as raised:
        run_build(recipe, out, progress=False, log=lambda s: None)
    message = str(raised.value)
    assert "'convert'" in message and "10 MB is free" in message and str(out) in message
    assert raised.value.hint and "--out" in raised.value.hint
    assert (out / "merge" / "record.json").is_file()
    convert = out / "convert"
    assert not convert.exists() or not any(convert.iterdir())
