"""Reading prompts for `route --jsonl`: one JSON object per line with a "prompt" string."""

from __future__ import annotations

import json
from typing import IO

from ..document import loads_json
from ..errors import UsageError


def read_prompts(stream: IO[str], name: str) -> list[str]:
    """Every prompt in ``stream``, all checked before any is routed; blank lines are skipped.

    A bad line stops the whole batch with an error naming ``name:line``, so a
    script never gets a partial answer it could mistake for a complete one.
    """
    prompts = []
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            row = loads_json(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{where} is not JSON ({exc.msg})",
                             hint='write one object per line, e.g. {"prompt": "fix my code"}') from exc
        if not isinstance(row, dict) or "prompt" not in row:
            raise UsageError(f"{where} has no \"prompt\" field",
                             hint='write one object per line, e.g. {"prompt": "fix my code"}')
        if not isinstance(row["prompt"], str):
            raise UsageError(f"{where}: \"prompt\" must be a string, not {type(row['prompt']).__name__}",
                             hint="quote the prompt")
        prompts.append(row["prompt"])
    return prompts
