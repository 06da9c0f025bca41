"""The runtime must install and run without the builder stack or the UI toolkit."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("torch", "transformers", "peft", "textual", "accelerate")

PROBE = r"""
import importlib, json, pkgutil, sys
import edge_assistant
loaded = []
for package in ("edge_assistant.runtime", "edge_assistant.bundle", "edge_assistant.router", "edge_assistant.server"):
    try:
        module = importlib.import_module(package)
    except ModuleNotFoundError:
        continue
    loaded.append(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        importlib.import_module(info.name)
        loaded.append(info.name)
importlib.import_module("edge_assistant.cli")
bad = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.argv[1])))
print(json.dumps({"loaded": loaded, "forbidden": bad}))
"""


def test_runtime_bundle_and_router_modules_import_no_torch_transformers_peft_or_textual():
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(FORBIDDEN)],
                         check=True, capture_output=True, text=True).stdout
    result = json.loads(out)
    assert "edge_assistant.runtime.engine" in result["loaded"]
    assert "edge_assistant.bundle.manifest" in result["loaded"]
    assert result["forbidden"] == [], f"runtime imported {result['forbidden']}"


def test_the_probe_would_notice_a_forbidden_import():
    # Guard against a probe that can never fail: importing json's sibling 'email'
    # must show up when we ask for it.
    code = PROBE.replace("import edge_assistant\n", "import edge_assistant, email\n")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(["email"])],
                         check=True, capture_output=True, text=True).stdout
    assert json.loads(out)["forbidden"] == ["email"]
