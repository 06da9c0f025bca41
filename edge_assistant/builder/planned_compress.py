"""`build compress --calib`: the best file of a size, from an HF folder or an f16 GGUF, in one command.

    HF folder ─► AWQ (+ importance, same pass) ─► f16 GGUF ─► sensitivity per group ─► plan ─► our quantizer
    f16 GGUF  ─► float model (transformers) ─► importance ─► sensitivity per group ─► plan ─► our quantizer

The calibration text goes through the model's chat template. AWQ searches its
scales for the block-32 type that the whole model would fit the target at
(Q8_0, Q5_0 or Q4_0), the type most of the plan ends up near.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .size_target import SizeTarget

AWQ_TYPES = ("Q8_0", "Q5_0", "Q4_0")  # largest first


@dataclass
class PlannedResult:
    path: Path
    size: int
    bits_per_weight: float
    plan: Any  # size_plan.SizePlan
    awq_type: str | None
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        awq = f"AWQ for {self.awq_type}, " if self.awq_type else ""
        return (f"wrote {self.path} ({self.size / 1e6:.2f} MB, {self.bits_per_weight:.2f} bits/weight; "
                f"{awq}importance-weighted, {len(self.plan.groups)} groups planned)")


def _load_hf(hf_dir: Path) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    return model, AutoTokenizer.from_pretrained(hf_dir)


def _load_gguf(gguf: Path) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"transformers cannot load {gguf} for the calibration pass: {exc}",
                         hint="pass the HF model folder instead of the GGUF") from exc
    return model, tokenizer


def _windows(tokenizer: Any, text: str, seq_len: int, n_tokens: int) -> Any:
    from .awq import _calibration_ids
    from .importance import chat_calibration_texts

    return _calibration_ids(tokenizer, chat_calibration_texts(tokenizer, [text]), seq_len, n_tokens)


def awq_type_for(model: Any, target: SizeTarget) -> str:
    """The largest of Q8_0/Q5_0/Q4_0 that the model's weights fit the target at (Q4_0 if none)."""
    from . import ggml_quant

    n_weights = sum(p.numel() for p in model.parameters())
    linear = [p for n, p in model.named_parameters() if p.ndim == 2]
    for qtype in AWQ_TYPES:
        size = sum(ggml_quant.tensor_bytes(qtype, tuple(p.shape)) for p in linear
                   if ggml_quant.fits(qtype, p.shape[1]))
        if (target.bytes is not None and size <= target.bytes) or \
                (target.bytes is None and 8 * size / n_weights <= float(target.bits_per_weight or 0)):
            return qtype
    return AWQ_TYPES[-1]


def compress_planned(src: Path | str, target: SizeTarget, out: Path | str, *, calib_text: str,
                     awq: bool = True, n_grid: int = 20, clip: bool = True, search_tokens: int = 1024,
                     sensitivity_tokens: int = 256, seq_len: int = 256, keep: Path | None = None,
                     say: Callable[[str], None] | None = None) -> PlannedResult:
    """AWQ (HF folder only), importance, per-group sensitivity, plan to `target`, quantize to `out`.

    With `keep`, the intermediate f16 GGUF (`f16.gguf`, AWQ-scaled when AWQ ran) and the
    importance (`importance.gguf`, llama.cpp's imatrix format) are kept in that folder.
    """
    import torch

    from .convert import convert_hf_to_gguf
    from .importance import Importance, collect_importance
    from .quantizer import quantize_with_plan
    from .size_plan import plan_to_size

    src, out = Path(src), Path(out)
    say = say or (lambda _m: None)
    seconds: dict[str, float] = {}
    is_hf = src.is_dir()
    if not is_hf and not src.is_file():
        raise UsageError(f"{src} not found", hint="pass an HF model folder or the f16 GGUF from `build convert`")
    if len(calib_text.split()) < 50:
        raise UsageError("the calibration text is too short (under 50 words)",
                         hint="give a few thousand tokens of varied prose, code and dialogue")
    work = Path(tempfile.mkdtemp(prefix=".compress-", dir=out.parent if out.parent.exists() else None))
    try:
        t0 = time.perf_counter()
        model, tokenizer = _load_hf(src) if is_hf else _load_gguf(src)
        awq_type = None
        if is_hf:
            f16 = work / "f16.gguf"
            if awq:
                from .awq import apply_awq

                awq_type = awq_type_for(model, target)
                say(f"AWQ for {awq_type} with importance in the same pass ...")
                stats = Importance()
                apply_awq(model, tokenizer, [calib_text], qtype=awq_type, n_grid=n_grid, clip=clip,
                          search_tokens=search_tokens, seq_len=seq_len, importance=stats,
                          progress=lambda b, n, s: say(f"  AWQ block {b + 1}/{n}: {s:.1f}s"))
                vectors = stats.vectors()
                scaled = work / "scaled"
                model.save_pretrained(scaled)
                tokenizer.save_pretrained(scaled)
                seconds["awq"] = time.perf_counter() - t0
                convert_hf_to_gguf(scaled, f16, outtype="f16")
            else:
                vectors = collect_importance(model, _windows(tokenizer, calib_text, seq_len, search_tokens))
                convert_hf_to_gguf(src, f16, outtype="f16")
        else:
            f16 = src
            say("importance from the calibration text ...")
            vectors = collect_importance(model, _windows(tokenizer, calib_text, seq_len, search_tokens))
        seconds["importance"] = time.perf_counter() - t0 - seconds.get("awq", 0.0)
        t1 = time.perf_counter()
        windows = _windows(tokenizer, calib_text, seq_len, sensitivity_tokens)
        say(f"sensitivity of each tensor group on {windows.numel()} calibration tokens ...")
        with torch.no_grad():
            plan = plan_to_size(model, windows, f16, target, importance=vectors,
                                progress=lambda i, n, name: say(f"  {i}/{n} {name}") if i % 10 == 0 or i == n else None)
        seconds["sensitivity"] = time.perf_counter() - t1
        say(plan.table())
        t2 = time.perf_counter()
        result = quantize_with_plan(f16, out, plan.types, importance=vectors, file_type=awq_type or "Q8_0")
        seconds["quantize"] = time.perf_counter() - t2
        if keep is not None:
            from .importance import write_imatrix

            keep.mkdir(parents=True, exist_ok=True)
            write_imatrix(keep / "importance.gguf", vectors, chunk_size=seq_len)
            if f16 != src:
                shutil.move(str(f16), keep / "f16.gguf")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if target.bytes is not None and result.size > target.bytes:
        out.unlink(missing_ok=True)
        raise UsageError(f"the planned file is {result.size / 1e6:.2f} MB, over the target {target}",
                         hint="this is a bug in the size accounting; please report it")
    return PlannedResult(out, result.size, result.bits_per_weight, plan, awq_type, seconds)
