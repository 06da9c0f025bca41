"""fit_router: input checks before any work, an atomic router folder, and loading errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edge_assistant.builder.router_fit import fit_router
from edge_assistant.builder.router_seed import load_examples
from edge_assistant.errors import RecipeError, RouterError
from edge_assistant.router.router import Router

GOOD = {"none": [f"general question number {i}" for i in range(10)],
        "code": [f"python function number {i}" for i in range(10)]}


@pytest.mark.parametrize("examples, message", [
    ({"code": GOOD["code"]}, "no 'none' prompts"),
    ({**GOOD, "code": GOOD["code"][:3]}, "has 3 distinct prompts"),
    ({**GOOD, "Bad Name": GOOD["code"]}, "not a valid modifier name"),
    ({**GOOD, "auto": GOOD["code"]}, "not a valid modifier name"),
    ({**GOOD, "code": "one string"}, "must be a list of prompts"),
    ({**GOOD, "code": GOOD["code"] + [GOOD["none"][0]]}, "labelled both"),
])
def test_bad_examples_are_refused_before_any_distillation(tmp_path: Path, examples, message):
    with pytest.raises(RecipeError, match=message):
        fit_router(examples, tmp_path / "router", embedding_source=tmp_path / "never-read")
    assert not (tmp_path / "router").exists()


def test_keyword_rules_for_a_route_without_examples_are_refused(tmp_path: Path):
    with pytest.raises(RecipeError, match="without examples: poetry"):
        fit_router(GOOD, tmp_path / "router", keyword_rules={"poetry": [(r"\bpoem\b", 1.0)]},
                   embedding_source=tmp_path / "never-read")


def test_the_seed_file_has_the_four_demo_routes():
    examples = load_examples()
    assert set(examples) == {"code", "reasoning", "automation", "none"}
    assert all(len(v) >= 80 for v in examples.values())


@pytest.mark.builder
def test_a_recipe_defined_route_with_its_own_keywords_is_fitted_and_routed(tmp_path: Path, embedding_dir: Path):
    examples = load_examples()
    examples = {"none": examples["none"], "code": examples["code"],
                "cooking": ["How long do I roast a chicken?", "Give me a recipe for pancakes",
                            "How do I make a sourdough starter?", "What can I cook with eggs and spinach?",
                            "How do I caramelize onions?", "Substitute for buttermilk in baking?",
                            "How long should pasta boil?", "Make a vegan chili recipe",
                            "How do I sear a steak properly?", "What spices go into garam masala?"]}
    examples["none"] = [p for p in examples["none"] if "recipe" not in p.lower() and "cook" not in p.lower()]
    out = fit_router(examples, tmp_path / "router", embedding_source=embedding_dir,
                     keyword_rules={"cooking": [(r"\b(bake|baking|roast|recipe|cook)\w*", 2.0, "kitchen words")]})
    router = Router.load(out)
    assert router.routes == ("none", "code", "cooking")
    decision = router.route("How long do I bake a salmon fillet at 200 degrees?")
    assert decision.modifier == "cooking", decision.reason
    report = json.loads((out / "fit_report.json").read_text())
    assert report["examples"]["cooking"] == 10


@pytest.mark.builder
def test_refitting_replaces_the_folder_whole_and_leaves_no_temporary_files(tmp_path: Path, embedding_dir: Path):
    out = tmp_path / "router"
    out.mkdir()
    (out / "stale.txt").write_text("from an older build")
    fit_router(load_examples(), out, embedding_source=embedding_dir, seed=1)
    assert not (out / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["router"]
    assert {"router.json", "keywords.json", "prototypes.npy", "fit_report.json", "embedding"} <= \
        {p.name for p in out.iterdir()}


@pytest.mark.builder
def test_a_damaged_router_folder_is_a_clear_error(tmp_path: Path, router_dir: Path):
    broken = tmp_path / "router"
    shutil.copytree(router_dir, broken)
    (broken / "embedding" / "vectors.npy").unlink()
    with pytest.raises(RouterError, match="missing vectors.npy"):
        Router.load(broken)
    shutil.rmtree(broken)
    shutil.copytree(router_dir, broken)
    (broken / "router.json").write_text("{not json")
    with pytest.raises(RouterError, match="cannot read the router"):
        Router.load(broken)
    config = json.loads((router_dir / "router.json").read_text())
    (broken / "router.json").write_text(json.dumps({**config, "prototype_routes": config["prototype_routes"][:-1]}))
    with pytest.raises(RouterError, match="does not match"):
        Router.load(broken)
    with pytest.raises(RouterError, match="between 0 and 1"):
        Router.load(router_dir, threshold=1.5)


@pytest.mark.builder
def test_the_manifest_threshold_overrides_the_fitted_one(router_dir: Path):
    strict = Router.load(router_dir, threshold=0.999)
    decision = strict.route("Could you look at this function and tell me why it is slow?")
    assert decision.modifier is None
    assert "below the threshold 1.00" in decision.reason


@pytest.mark.builder
def test_the_fitted_threshold_can_be_read_for_the_manifest(router_dir: Path, tmp_path: Path):
    from edge_assistant.router.format import RouterConfig

    assert RouterConfig.load(router_dir).threshold == json.loads((router_dir / "router.json").read_text())["threshold"]
    with pytest.raises(RouterError, match="has no router.json"):
        RouterConfig.load(tmp_path)
