"""Training data: JSONL rows in chat or prompt/response form, validated before any training.

Two row forms are accepted::

    {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}
    {"prompt": "...", "response": "...", "system": "..." (optional)}

Every row of every file is checked when the build starts (the `data` stage), so
a malformed row fails with its file and line before a minute of training is
spent. Tokenization applies the model's own chat template; the loss mask keeps
only assistant tokens, so the model learns to answer, not to write prompts.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import RecipeError

ROLES = ("system", "user", "assistant")
IGNORE_INDEX = -100  # label value the loss skips (torch CrossEntropy's ignore_index)

Message = dict[str, str]


def _row_error(path: Path, line: int, what: str) -> RecipeError:
    return RecipeError(f"{path}:{line}: {what}",
                       hint='each line must be {"messages": [...]} or {"prompt": ..., "response": ...}')


def parse_row(row: Any, path: Path, line: int) -> list[Message]:
    """One JSONL row as a list of chat messages ending with an assistant turn."""
    if not isinstance(row, dict):
        raise _row_error(path, line, f"row is a {type(row).__name__}, not a JSON object")
    if "messages" in row:
        messages = row["messages"]
        if not isinstance(messages, list) or not messages:
            raise _row_error(path, line, "'messages' must be a non-empty list")
        out = []
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or set(m) - {"role", "content"} or "role" not in m or "content" not in m:
                raise _row_error(path, line, f"messages[{i}] must be an object with 'role' and 'content' only")
            if m["role"] not in ROLES:
                raise _row_error(path, line, f"messages[{i}].role {m['role']!r} is not one of {', '.join(ROLES)}")
            if not isinstance(m["content"], str):
                raise _row_error(path, line, f"messages[{i}].content must be a string")
            out.append({"role": m["role"], "content": m["content"]})
        if not any(m["role"] == "assistant" for m in out):
            raise _row_error(path, line, "no assistant message: nothing to learn from this row")
        return out
    if "prompt" in row or "response" in row:
        for key in ("prompt", "response"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise _row_error(path, line, f"'{key}' must be a non-empty string")
        out = []
        if isinstance(row.get("system"), str) and row["system"]:
            out.append({"role": "system", "content": row["system"]})
        out += [{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": row["response"]}]
        return out
    raise _row_error(path, line, f"row has neither 'messages' nor 'prompt'/'response' (keys: {sorted(row)})")


def read_jsonl(path: Path) -> list[list[Message]]:
    """All rows of a JSONL file, validated; the first bad row raises with file and line."""
    rows = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{path}: not UTF-8 text ({exc})", hint="save the file as UTF-8 JSONL") from exc
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _row_error(path, number, f"not valid JSON ({exc.msg} at column {exc.colno})") from exc
        rows.append(parse_row(row, path, number))
    if not rows:
        raise RecipeError(f"{path}: no rows", hint="add at least one JSONL row")
    return rows


def write_jsonl(rows: Iterable[dict[str, Any]], path: Path) -> Path:
    from .stage_record import atomic_write_text

    return atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


@dataclass(frozen=True)
class Split:
    train: list[list[Message]]
    val: list[list[Message]]


def split_rows(rows: Sequence[list[Message]], val_fraction: float, seed: int) -> Split:
    """A deterministic split: the same rows and seed always give the same validation rows."""
    order = sorted(range(len(rows)), key=lambda i: hashlib.sha256(
        f"{seed}:{json.dumps(rows[i], sort_keys=True)}".encode()).hexdigest())
    n_val = max(1, round(len(rows) * val_fraction)) if val_fraction > 0 and len(rows) > 1 else 0
    val_idx = set(order[:n_val])
    return Split(train=[r for i, r in enumerate(rows) if i not in val_idx],
                 val=[r for i, r in enumerate(rows) if i in val_idx])


def load_sources(files: Sequence[Path], val_fraction: float, seed: int) -> Split:
    rows: list[list[Message]] = []
    for f in files:
        rows.extend(read_jsonl(f))
    return split_rows(rows, val_fraction, seed)


# -- tokenization ----------------------------------------------------------


@dataclass(frozen=True)
class Example:
    input_ids: list[int]
    labels: list[int]  # IGNORE_INDEX outside assistant turns


def render(tokenizer: Any, messages: list[Message], *, add_generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def assistant_spans(tokenizer: Any, messages: list[Message]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its assistant turns.

    Each span runs from the end of the prompt that asks for that turn (the
    template rendered with a generation prompt) to the end of the conversation
    rendered through that turn, so it includes the end-of-turn token the model
    must learn to emit.
    """
    full = render(tokenizer, messages)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = render(tokenizer, messages[:i], add_generation_prompt=True)
        through = render(tokenizer, messages[: i + 1])
        if not full.startswith(through) or not through.startswith(before):
            raise RecipeError("the chat template does not render conversations as prefixes of each other",
                              hint="use a base whose chat template renders turns in order (Llama-family templates do)")
        spans.append((len(before), len(through)))
    return full, spans


def tokenize_example(tokenizer: Any, messages: list[Message], max_len: int) -> Example:
    text, spans = assistant_spans(tokenizer, messages)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    labels = []
    for tok, (start, end) in zip(ids, enc["offset_mapping"]):
        inside = any(s <= start < e for s, e in spans) and end > start
        labels.append(tok if inside else IGNORE_INDEX)
    return Example(input_ids=ids[:max_len], labels=labels[:max_len])


def tokenize_all(tokenizer: Any, rows: Sequence[list[Message]], max_len: int) -> list[Example]:
    examples = [tokenize_example(tokenizer, r, max_len) for r in rows]
    # A row whose answer was cut off entirely teaches nothing and would divide the loss by zero.
    return [e for e in examples if any(label != IGNORE_INDEX for label in e.labels)]


def prompt_of(messages: list[Message]) -> str:
    """The last user message: what the router sees for this row."""
    return next(m["content"] for m in reversed(messages) if m["role"] == "user")


def shuffled(items: Sequence[Any], seed: int) -> list[Any]:
    out = list(items)
    random.Random(seed).shuffle(out)
    return out
