"""router.json through its one owner, router/format.py: a round trip that keeps every field, and
one clear line (never a traceback) for each way a downloaded file can be wrong."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import edge_assistant
from edge_assistant.cli import main
from edge_assistant.errors import RouterError
from edge_assistant.router.format import ROUTER_FILE, RouterConfig

# The shipped starter's router, written by the fitter before router/format.py existed.
STARTER_ROUTER = Path(edge_assistant.__file__).parent / "starter" / "router"


def _original() -> dict:
    return json.loads((STARTER_ROUTER / ROUTER_FILE).read_text(encoding="utf-8"))


def test_a_saved_config_reads_back_equal_and_writes_every_field_a_fitted_file_has(tmp_path: Path):
    config = RouterConfig.load(STARTER_ROUTER)
    original = _original()
    assert config.routes == tuple(original["routes"]) and config.threshold == original["threshold"]
    assert config.stickiness_bonus == original["stickiness"]["bonus"]
    config.save(tmp_path)
    assert RouterConfig.load(tmp_path) == config
    assert json.loads((tmp_path / ROUTER_FILE).read_text(encoding="utf-8")) == original


def test_optional_fields_take_their_defaults():
    data = _original()
    del data["max_chars"], data["stickiness"]
    config = RouterConfig.from_dict(data)
    assert (config.max_chars, config.stickiness_bonus) == (1000, 2.0)


def _replace(**fields):
    def change(data: dict) -> None:
        data.update(fields)
    return change


def _drop(key: str):
    def change(data: dict) -> None:
        del data[key]
    return change


MALFORMED = {
    "wrong version": (_replace(format_version=2), "not a version-1 router"),
    "no routes": (_drop("routes"), "no field 'routes'"),
    "routes not a list": (_replace(routes="none,code"), "'routes' must be a list"),
    "a route that is not a name": (_replace(routes=["none", 3]), "'routes' must be a list of non-empty names"),
    "base route not first": (_replace(routes=["code", "none", "reasoning", "automation"]), "must start with 'none'"),
    "a route twice": (_replace(routes=["none", "code", "code", "automation"]), "name a route twice"),
    "threshold above 1": (_replace(threshold=1.5), "not between 0 and 1"),
    "threshold a string": (_replace(threshold="0.4"), "'threshold' must be a number, not str"),
    "threshold a boolean": (_replace(threshold=True), "'threshold' must be a number, not bool"),
    "threshold NaN": (_replace(threshold=float("nan")), "'threshold' must be a finite number"),
    "threshold of 400 digits": (_replace(threshold=10 ** 400), "'threshold' must be a finite number"),
    "k zero": (_replace(k=0), "'k' is 0, not at least 1"),
    "k fractional": (_replace(k=2.5), "'k' must be an integer, not float"),
    "max_chars negative": (_replace(max_chars=-1), "'max_chars' is -1"),
    "stickiness not an object": (_replace(stickiness=2.0), "'stickiness' must be an object"),
    "stickiness bonus a list": (_replace(stickiness={"bonus": [2]}), "'stickiness.bonus' must be a number"),
    "no calibration": (_replace(calibrators={}), "'calibrators' must map"),
    "prototype route out of range": (_replace(prototype_routes=[0, 1, 9]), "index outside the 4 routes"),
    "prototype route negative": (_replace(prototype_routes=[-1]), "index outside the 4 routes"),
    "prototype route a float": (_replace(prototype_routes=[0, 1.0]), "must be a list of route indices"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_field_is_one_line_that_names_it(case: str, tmp_path: Path):
    change, message = MALFORMED[case]
    data = _original()
    change(data)
    (tmp_path / ROUTER_FILE).write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(RouterError) as info:
        RouterConfig.load(tmp_path)
    text = str(info.value)
    assert message in text and "\n" not in text
    assert info.value.hint


@pytest.mark.parametrize("payload, message", [
    (b"{not json", "cannot read the router"),
    (b"\xff\xfe{}", "cannot read the router"),
    (b"[" * 100000 + b"]" * 100000, "cannot read the router"),
    (b"[]", "not a version-1 router"),
])
def test_a_file_that_is_not_a_router_config_is_one_line(payload: bytes, message: str, tmp_path: Path):
    (tmp_path / ROUTER_FILE).write_bytes(payload)
    with pytest.raises(RouterError) as info:
        RouterConfig.load(tmp_path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_missing_file_names_the_folder(tmp_path: Path):
    with pytest.raises(RouterError, match=f"has no {ROUTER_FILE}"):
        RouterConfig.load(tmp_path)


def test_save_refuses_what_load_would_refuse_and_writes_nothing(tmp_path: Path):
    config = RouterConfig.load(STARTER_ROUTER)
    bad = RouterConfig(routes=config.routes, threshold=2.0, k=config.k, calibrators=config.calibrators,
                       prototype_routes=config.prototype_routes)
    with pytest.raises(RouterError, match="between 0 and 1"):
        bad.save(tmp_path)
    assert not (tmp_path / ROUTER_FILE).exists()


def test_route_with_a_damaged_router_json_prints_one_line_and_no_traceback(tmp_path: Path):
    bundle = tmp_path / "bundle"
    manifest = json.loads((STARTER_ROUTER.parent / "manifest.json").read_text(encoding="utf-8"))
    bundle.mkdir()
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    shutil.copytree(STARTER_ROUTER, bundle / manifest["router"]["dir"])
    data = _original()
    data["prototype_routes"] = [0, 7]
    (bundle / manifest["router"]["dir"] / ROUTER_FILE).write_text(json.dumps(data), encoding="utf-8")
    result = CliRunner().invoke(main, ["route", "hello", "--bundle", str(bundle)])
    assert result.exit_code == 1
    assert "index outside the 4 routes" in result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert len([line for line in result.stderr.splitlines() if line.strip()]) <= 2   # the error and its hint
