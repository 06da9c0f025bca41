"""What every build stage shares: the recipe and base, the output folder, the processes, the tokenizer.

What each stage reads and writes is declared on its Stage (stages.py), not here."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .base_model import BaseSource
from .dataset import Split, read_jsonl
from .recipe import Recipe


@dataclass
class BuildContext:
    recipe: Recipe
    out: Path
    source: BaseSource
    awq: bool
    progress: bool = True
    log: Callable[[str], None] = print
    tokenizer_copy: Path | None = None  # the merge stage's model folder, once it holds the base's tokenizer
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
        the same tokenizer serves the quantized base: a stage that declares the
        base (or the quantized base) as an input has declared its tokenizer.
        """
        if self._tokenizer is None:
            from .base_model import load_tokenizer

            copy = self.tokenizer_copy
            use = BaseSource(location=str(copy)) if copy and (copy / "tokenizer_config.json").is_file() else self.source
            self._tokenizer = load_tokenizer(use)
        return self._tokenizer

    def base_inputs(self) -> dict[str, Path]:
        local = self.source.local_path
        return {"base": local} if local is not None else {}

    def base_config(self) -> dict[str, Any]:
        return dataclasses.asdict(self.source)


def as_table(obj: Any) -> Any:
    """A config dataclass as plain JSON data: what a stage's fingerprint and record hold."""
    return json.loads(json.dumps(dataclasses.asdict(obj), default=str))


def read_split(train_file: Path, val_file: Path) -> Split:
    return Split(train=list(read_jsonl(train_file)), val=list(read_jsonl(val_file)))
