"""Merge a LoRA into its base with ``merge_and_unload``, after checking the two agree.

The check runs the same probe batch through the adapter model and the merged
model and records the largest absolute logit difference; past the recipe's
tolerance the build stops, because a merge that changes the model's answers
would silently ship a different model than the one that was validated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..durable import atomic_folder
from ..errors import BuildError
from .base_model import BaseSource, load_model
from .dataset import Example
from .train import collate


@dataclass(frozen=True)
class MergeResult:
    model_dir: Path
    max_abs_logit_diff: float
    mean_abs_logit_diff: float
    probe_tokens: int


def _logits(model: Any, batch: dict[str, Any]) -> Any:
    import torch

    with torch.no_grad():
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    return out.logits.float()[batch["attention_mask"].bool()]


def save_model_dir(model: Any, tokenizer: Any, out_dir: Path) -> Path:
    """save_pretrained into a temp folder swapped in whole: a killed merge leaves no half model,
    and the previous folder stays until the new one is complete."""
    with atomic_folder(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return out_dir


def merge_lora(source: BaseSource, adapter_dir: Path | None, tokenizer: Any, probe: Sequence[Example],
               out_dir: Path, *, dtype: str, tolerance: float) -> MergeResult:
    """Merge ``adapter_dir`` into the base (or, with no adapter, save the base as safetensors)."""
    import torch
    from peft import PeftModel

    device = "cuda" if torch.cuda.is_available() else "cpu"
    base = load_model(source, dtype, device)
    if adapter_dir is None:
        return MergeResult(model_dir=save_model_dir(base, tokenizer, out_dir), max_abs_logit_diff=0.0,
                           mean_abs_logit_diff=0.0, probe_tokens=0)
    model = PeftModel.from_pretrained(base, adapter_dir).eval()
    batch = {k: v.to(device) for k, v in collate(list(probe), tokenizer.pad_token_id).items()}
    before = _logits(model, batch)
    merged = model.merge_and_unload().eval()
    after = _logits(merged, batch)
    diff = (before - after).abs()
    result = MergeResult(model_dir=out_dir, max_abs_logit_diff=float(diff.max()),
                         mean_abs_logit_diff=float(diff.mean()), probe_tokens=int(before.shape[0]))
    if result.max_abs_logit_diff > tolerance:
        raise BuildError(f"merge check failed: adapter and merged model logits differ by up to "
                         f"{result.max_abs_logit_diff:.4g} (tolerance {tolerance:g})",
                         hint="raise phase1.merge_tolerance only if you know why (bf16 merges drift more), "
                              "or use dtype = \"fp32\"")
    merged.config.use_cache = True
    save_model_dir(merged, tokenizer, out_dir)
    return result
