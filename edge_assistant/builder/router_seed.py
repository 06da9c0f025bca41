"""The router's own seed prompts for the demo routes (code, reasoning, automation, none).

``data/router_seed.jsonl``: one ``{"label", "prompt"}`` object per line, written
by hand for fitting the demo router. It is never used for evaluation: the
labelled evaluation set lives in ``tests/data/router_eval.jsonl``.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import RecipeError

SEED_FILE = Path(__file__).parent / "data" / "router_seed.jsonl"


def load_examples(path: Path = SEED_FILE) -> dict[str, list[str]]:
    """Route -> prompts, in file order."""
    examples: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                label, prompt = row["label"], row["prompt"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise RecipeError(f"{path}:{number}: expected {{\"label\": ..., \"prompt\": ...}} ({exc})",
                                  hint="fix that line") from exc
            examples.setdefault(str(label), []).append(str(prompt))
    return examples
