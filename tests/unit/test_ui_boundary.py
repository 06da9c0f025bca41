"""Only edge_assistant/tui imports textual (STYLE #1), checked on the source so a new
module anywhere else is caught even if nothing imports it yet."""

from __future__ import annotations

import ast
from pathlib import Path

import edge_assistant

PACKAGE = Path(edge_assistant.__file__).parent


def textual_importers(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            if any(n == "textual" or n.startswith("textual.") for n in names):
                found.append(str(path.relative_to(root.parent)))
                break
    return found


def test_textual_is_imported_only_inside_the_tui_package() -> None:
    outside = [p for p in textual_importers(PACKAGE) if not p.startswith("edge_assistant/tui/")]
    assert outside == []


def test_the_check_sees_the_tui_package_importing_textual() -> None:
    assert "edge_assistant/tui/app.py" in textual_importers(PACKAGE)
