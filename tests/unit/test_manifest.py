"""manifest.json validation: every malformed field is a ManifestError, never a traceback."""

from __future__ import annotations

import copy

import pytest

from edge_assistant.bundle.manifest import manifest_from_dict
from edge_assistant.errors import ManifestError

SHA = "a" * 64
VALID = {
    "format_version": 1, "name": "demo",
    "base": {"file": "base.gguf.zst", "sha256": SHA, "size": 10, "packed_sha256": SHA, "packed_size": 5,
             "arch": "llama", "quant_type": "Q4_1", "context_length": 2048},
    "modifiers": [{"name": "code", "file": "modifiers/code.gguf", "sha256": SHA, "size": 3, "base_sha256": SHA,
                   "rank": 8, "alpha": 16, "description": "code help", "default_scale": 1.0}],
    "router": {"dir": "router", "threshold": 0.4, "files": {"router.json": SHA}},
}


def with_change(path: tuple, value):
    data = copy.deepcopy(VALID)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


def test_a_valid_manifest_loads(tmp_path):
    manifest = manifest_from_dict(VALID, tmp_path)
    assert manifest.modifier("code").default_scale == 1.0 and manifest.router.files == {"router.json": SHA}


def test_a_modifier_kind_defaults_to_lora_and_alora_is_read(tmp_path):
    assert manifest_from_dict(VALID, tmp_path).modifier("code").kind == "lora"
    alora = manifest_from_dict(with_change(("modifiers", 0, "kind"), "alora"), tmp_path)
    assert alora.modifier("code").kind == "alora"
    assert alora.to_dict()["modifiers"][0]["kind"] == "alora"


@pytest.mark.parametrize("path, value, fragment", [
    (("modifiers", 0, "default_scale"), "big", "default_scale"),
    (("modifiers", 0, "default_scale"), {}, "default_scale"),
    (("modifiers", 0, "default_scale"), float("nan"), "default_scale"),
    (("modifiers", 0, "description"), ["x"], "description"),
    (("modifiers", 0, "kind"), "qlora", "kind must be one of lora, alora"),
    (("modifiers", 0, "kind"), 1, "kind"),
    (("modifiers", 0, "file"), "../x.gguf", "leaves the bundle"),
    (("base", "file"), "/etc/passwd", "absolute"),
    (("router", "files"), {"../../x": SHA}, "leaves the bundle"),
    (("modifiers", 0, "name"), "auto", "not allowed"),
    (("base", "sha256"), "XYZ", "sha256"),
    (("format_version",), 99, "not supported"),
])
def test_each_malformed_field_is_a_manifest_error_naming_it(tmp_path, path, value, fragment):
    with pytest.raises(ManifestError, match=fragment):
        manifest_from_dict(with_change(path, value), tmp_path)
