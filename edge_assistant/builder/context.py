"""What every build stage shares: the stage list, the output layout, the recipe and base, the processes."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import UsageError
from .base_model import BaseSource
from .dataset import Split, read_jsonl
from .recipe import Recipe

STAGES = ("data", "phase1", "merge", "convert", "quantize", "modifiers", "router", "evaluate", "bundle")
# Stage folders are named after their stage, except that the bundle stage's own files (record,
# REPORT.md) live in `pack/`, leaving `bundle/` to the finished bundle.
STAGE_FOLDERS = {**{s: s for s in STAGES}, "bundle": "pack"}
TRAINING_STAGES = ("phase1", "modifiers")


@dataclass
class BuildContext:
    recipe: Recipe
    out: Path
    source: BaseSource
    awq: bool
    progress: bool = True
    log: Callable[[str], None] = print
    _tokenizer: Any = None
    _state: Any = None  # accelerate.PartialState: one process, or one per GPU under accelerate/torchrun

    @property
    def world_size(self) -> int:
        return 1 if self._state is None else self._state.num_processes

    @property
    def is_main(self) -> bool:
        return self._state is None or self._state.is_main_process

    def wait(self) -> None:
        """All processes meet here, so no rank reads a file before rank 0 has written it."""
        if self._state is not None:
            self._state.wait_for_everyone()

    def tokenizer(self) -> Any:
        """The base's tokenizer, loaded once per build.

        After the merge stage it is read from the merged model's folder (a
        tokenizer.json loads in a second; rebuilding it from GGUF metadata takes
        tens of seconds). Conversion and quantization keep the vocabulary, so
        the same tokenizer serves the quantized base.
        """
        if self._tokenizer is None:
            from .base_model import load_tokenizer

            merged = self.stage_dir("merge") / "model"
            use = BaseSource(location=str(merged)) if (merged / "tokenizer_config.json").is_file() else self.source
            self._tokenizer = load_tokenizer(use)
        return self._tokenizer

    def stage_dir(self, name: str) -> Path:
        return self.out / STAGE_FOLDERS[name]

    def record(self, name: str) -> dict[str, Any]:
        path = self.stage_dir(name) / "record.json"
        if not path.is_file():
            raise UsageError(f"stage '{name}' has not finished in {self.out}",
                             hint=f"run the build without --from (or with --from {name}) first")
        return json.loads(path.read_text(encoding="utf-8"))

    def base_inputs(self) -> dict[str, Path]:
        local = self.source.local_path
        return {"base": local} if local is not None else {}

    def base_config(self) -> dict[str, Any]:
        return dataclasses.asdict(self.source)

    def enabled(self, name: str) -> bool:
        """Whether a stage applies to this recipe (no phase 1, no modifiers, no router)."""
        if name == "phase1":
            return self.recipe.phase1.enabled
        if name == "router":
            return self.recipe.router.enabled and bool(self.recipe.modifiers)
        if name in ("modifiers", "evaluate"):
            return bool(self.recipe.modifiers)
        if name in ("merge", "convert", "quantize"):
            return self.recipe.quantize.enabled
        return True


def as_table(obj: Any) -> Any:
    """A config dataclass as plain JSON data: what a stage's fingerprint and record hold."""
    return json.loads(json.dumps(dataclasses.asdict(obj), default=str))


def split_files(ctx: BuildContext, key: str) -> tuple[Path, Path]:
    d = ctx.stage_dir("data")
    return d / f"{key}.train.jsonl", d / f"{key}.val.jsonl"


def load_split(ctx: BuildContext, group: str) -> Split:
    train_file, val_file = split_files(ctx, group)
    return Split(train=[r for r in read_jsonl(train_file)], val=[r for r in read_jsonl(val_file)])


def quantized_gguf(ctx: BuildContext) -> Path:
    """The base the modifiers train on and bind to: the quantize stage's output, or the GGUF base as it is."""
    q = ctx.recipe.quantize
    if not q.enabled:
        assert ctx.source.gguf_path is not None  # run_build checks it
        return ctx.source.gguf_path
    return ctx.stage_dir("quantize") / f"model-{q.qtype}.gguf"
