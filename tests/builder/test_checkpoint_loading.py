"""Resuming training never unpickles code: checkpoints load with ``torch.load(weights_only=True)``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from edge_assistant.builder.train import CHECKPOINT_DIR, _load_checkpoint, _save_checkpoint
from edge_assistant.errors import BuildError


class _Payload:
    """Pickles as a call to Path.touch: what a tampered checkpoint could run on a full unpickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _state(step: int) -> dict:
    return {"lora": {"w": torch.zeros(2, 2)}, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4,
            "betas": (0.9, 0.999), "params": [0]}]}, "scheduler": {"last_epoch": step, "_last_lr": [1e-4]},
            "state": {"step": step, "train_loss": [[1, 2.5]], "tokens": 10, "val_before": 3.0}}


def test_a_tampered_newest_checkpoint_is_skipped_without_running_and_the_one_before_resumes(tmp_path: Path) -> None:
    _save_checkpoint(tmp_path, 1, _state(1))
    marker = tmp_path / "ran"
    torch.save({"lora": _Payload(marker), "optimizer": {}, "scheduler": {}, "state": {}},
               tmp_path / CHECKPOINT_DIR / "step-2.pt")
    lines: list[str] = []

    path, saved = _load_checkpoint(tmp_path, "code", lines.append)

    assert not marker.exists(), "the checkpoint's pickle ran code"
    assert path == tmp_path / CHECKPOINT_DIR / "step-1.pt" and saved["state"]["step"] == 1
    assert torch.equal(saved["lora"]["w"], torch.zeros(2, 2))
    assert len(lines) == 1 and lines[0].startswith("code: skipping checkpoint step-2.pt")


def test_when_no_checkpoint_loads_the_error_says_what_to_delete(tmp_path: Path) -> None:
    (tmp_path / CHECKPOINT_DIR).mkdir()
    (tmp_path / CHECKPOINT_DIR / "step-3.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(BuildError, match=r"none of the 1 checkpoints .* loads — delete .*checkpoints"):
        _load_checkpoint(tmp_path, "code", None)


def test_without_checkpoints_training_starts_from_the_beginning(tmp_path: Path) -> None:
    assert _load_checkpoint(tmp_path, "code", None) == (None, None)
