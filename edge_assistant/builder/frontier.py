"""The build's base against llama.cpp's own quantizer at the same size: KL, perplexity and top-1 on held-out text.

What a user would otherwise download is llama.cpp's `llama-imatrix` + `llama-quantize
--imatrix` output at about the same size. For every mix GGUF publishers ship whose
file would be about the size of our base (from 3% smaller to 10% larger, predicted
from llama.cpp's own per-tensor rules in quant_mix), `llama_model_quantize` quantizes
the *unscaled* f16 model twice: plain, and with an importance matrix of the block
linears (what llama-imatrix collects: never the output matrix or a tied embedding)
from the same calibration text and tokens as our AWQ pass. Every file, ours included,
is scored through llama.cpp against that f16 on the packaged held-out text, which no
calibration ever sees. The baseline is llama.cpp's best file.

The importance values come from our collector (builder/importance.py), not from the
llama-imatrix binary, which is not a build dependency; `benchmarks/awq_compress.py`
runs the real llama-imatrix and llama-quantize side by side.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

# llama.cpp mixes that GGUF publishers ship and llama_model_quantize makes without an importance
# matrix, largest first; the importance-only IQ1/IQ2/IQ3_XXS mixes are never a publisher's default.
PUBLISHED_MIXES = ("Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_1", "Q5_0", "Q4_K_M", "Q4_K_S", "Q4_1", "IQ4_NL",
                   "IQ4_XS", "Q4_0", "Q3_K_L", "Q3_K_M", "IQ3_M", "Q3_K_S", "Q2_K")
SMALLER, LARGER = 0.03, 0.10  # the size window around our base, as fractions of its tensor bytes
MAX_MIXES = 3


@dataclass(frozen=True)
class FrontierRow:
    """One scored file: llama.cpp's `mix` (plain or with importance), or ours."""

    label: str
    mix: str | None
    importance: bool
    ours: bool
    size: int
    kl: float
    perplexity: float
    top1: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def size_matched_mixes(f16: Path, our_bytes: int, *, prefer: str | None = None) -> list[tuple[str, int]]:
    """(mix, predicted tensor bytes) of llama.cpp's mixes about `our_bytes` in size, nearest first.

    Mixes whose per-tensor types come out the same on this model (k-quants falling back on
    rows that do not split into 256-wide blocks) count once, under `prefer` when it is one of them.
    """
    from .quantizer import mix_table

    order = ([prefer.upper()] if prefer and prefer.upper() in PUBLISHED_MIXES else []) + list(PUBLISHED_MIXES)
    seen: set[tuple[tuple[str, str], ...]] = set()
    sized: list[tuple[str, int]] = []
    for mix, (types, nbytes) in mix_table(f16, list(dict.fromkeys(order))).items():
        key = tuple(sorted(types.items()))
        if key not in seen:
            seen.add(key)
            sized.append((mix, nbytes))
    inside = [(m, b) for m, b in sized if our_bytes * (1 - SMALLER) <= b <= our_bytes * (1 + LARGER)]
    nearest = sorted(inside or sized, key=lambda mb: abs(math.log(mb[1] / our_bytes)))
    return nearest[:MAX_MIXES] if inside else nearest[:1]


def block_importance(vectors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Only what llama-imatrix collects by default: the blocks' linears (no output matrix, no embedding)."""
    return {name: v for name, v in vectors.items() if name.startswith("blk.")}


def compare_to_llama_cpp(ours: Path, f16: Path, *, importance: Mapping[str, np.ndarray], heldout: str,
                         work: Path, ours_weighted: bool, prefer: str | None = None, threads: int = 1,
                         n_ctx: int = 512, say: Callable[[str], None] | None = None) -> list[FrontierRow]:
    """Score `ours` and llama.cpp's size-matched files (plain and importance-weighted) against `f16`.

    `ours_weighted` says whether our file was quantized with importance (the row records it).
    llama.cpp's files are written in `work` one at a time and deleted once scored.
    """
    from .evaluate import evaluate_gguf
    from .gguf_index import read_tensor_index
    from .quantize import quantize_gguf

    say = say or (lambda _m: None)
    weights = block_importance(importance)

    def score(path: Path, label: str, mix: str | None, weighted: bool, is_ours: bool) -> FrontierRow:
        r = evaluate_gguf(path, reference=f16, text=heldout, n_ctx=n_ctx, threads=threads)
        row = FrontierRow(label, mix, weighted, is_ours, path.stat().st_size, float(r.kl_divergence or 0.0),
                          r.perplexity, float(r.top1_agreement or 0.0))
        say(f"  {label}: {row.size / 1e6:.2f} MB, KL {row.kl:.4f}")
        return row

    our_bytes = sum(t.nbytes for t in read_tensor_index(ours))
    rows: list[FrontierRow] = []
    for mix, _predicted in size_matched_mixes(f16, our_bytes, prefer=prefer):
        for weighted in (False, True):
            if weighted and not weights:
                continue
            label = f"llama.cpp {mix}" + (", importance matrix" if weighted else "")
            path = work / f"llama-{mix}{'-imatrix' if weighted else ''}.gguf"
            quantize_gguf(f16, path, mix, importance=weights if weighted else None)
            try:
                rows.append(score(path, label, mix, weighted, False))
            finally:
                path.unlink(missing_ok=True)
    rows.append(score(ours, "ours: the build's base", None, ours_weighted, True))
    return rows


def best_llama_cpp(rows: Sequence[FrontierRow]) -> FrontierRow | None:
    theirs = [r for r in rows if not r.ours]
    return min(theirs, key=lambda r: r.kl) if theirs else None


def frontier_table(rows: Sequence[FrontierRow]) -> str:
    """Markdown: every file with its KL as a ratio to llama.cpp's best (the baseline)."""
    best = best_llama_cpp(rows)
    lines = ["| file | MB | KL | ratio to llama.cpp's best | perplexity | top-1 |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        ratio = f"{r.kl / best.kl:.2f}" if best is not None and best.kl > 0 else "n/a"
        name = f"**{r.label}**" if r.ours else r.label
        lines.append(f"| {name} | {r.size / 1e6:.2f} | {r.kl:.4f} | {ratio} | {r.perplexity:.3f} | {r.top1:.1%} |")
    return "\n".join(lines)
