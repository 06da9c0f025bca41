"""Pick the best quantization type that fits a size target, by measuring each candidate.

A target is either bytes ("95MB", "90MiB", "95000000") or bits per weight ("4.5bpw").
Every candidate type is quantized for real (llama.cpp decides per tensor, with
fallbacks, so only the output file tells the true size); the chosen type is the
fitting one with the lowest perplexity when a text is given, else the one with
the most bits per weight.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..durable import move_file
from ..errors import UsageError

# Candidates from largest to smallest; k-quants are left in because on models
# whose rows are multiples of 256 they beat the block-32 types at the same size.
CANDIDATES = ("Q8_0", "Q6_K", "Q5_K_M", "Q5_1", "Q5_0", "Q4_K_M", "Q4_1", "Q4_0", "Q3_K_M", "Q2_K")

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


@dataclass(frozen=True)
class SizeTarget:
    bytes: int | None = None
    bits_per_weight: float | None = None

    def fits(self, size: int, bpw: float) -> bool:
        if self.bytes is not None:
            return size <= self.bytes
        return bpw <= float(self.bits_per_weight or 0)

    def __str__(self) -> str:
        return f"{self.bytes / 1e6:.1f} MB" if self.bytes is not None else f"{self.bits_per_weight} bits/weight"


def parse_target(text: str) -> SizeTarget:
    """'95MB', '90MiB', '95000000' -> bytes; '4.5bpw' -> bits per weight."""
    t = text.strip().upper().replace(" ", "")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)BPW", t)
    if m:
        return SizeTarget(bits_per_weight=float(m.group(1)))
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMG]I?B|B)?", t)
    if not m or float(m.group(1)) <= 0:
        raise UsageError(f"cannot read the size target {text!r}",
                         hint="write bytes (95000000, 95MB, 90MiB) or bits per weight (4.5bpw)")
    return SizeTarget(bytes=int(float(m.group(1)) * _UNITS[m.group(2) or ""]))


@dataclass
class Candidate:
    qtype: str
    size: int
    bits_per_weight: float
    fits: bool
    perplexity: float | None = None
    fallbacks: int = 0


@dataclass
class SizeChoice:
    target: SizeTarget
    chosen: Candidate | None
    candidates: list[Candidate] = field(default_factory=list)
    path: Path | None = None

    def table(self) -> str:
        head = f"{'type':<8} {'size MB':>8} {'bits/w':>7} {'ppl':>9} {'fits':>5} {'fallbacks':>9}"
        lines = [f"target: {self.target}", head]
        for c in self.candidates:
            ppl = f"{c.perplexity:.3f}" if c.perplexity is not None else "-"
            mark = " <- chosen" if self.chosen is not None and c.qtype == self.chosen.qtype else ""
            lines.append(f"{c.qtype:<8} {c.size / 1e6:>8.1f} {c.bits_per_weight:>7.2f} {ppl:>9} "
                         f"{'yes' if c.fits else 'no':>5} {c.fallbacks:>9}{mark}")
        return "\n".join(lines)


def choose_type(src: Path | str, target: SizeTarget, out: Path | str, *, types: Sequence[str] = CANDIDATES,
                eval_text: str | None = None, threads: int = 1, max_eval_tokens: int | None = None) -> SizeChoice:
    """Quantize `src` to each of `types`, keep the best that fits `target` at `out`."""
    from .evaluate import evaluate_gguf
    from .quantize import quantize_gguf

    src, out = Path(src), Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".size-target-", dir=out.parent))
    choice = SizeChoice(target, None)
    try:
        files: dict[str, Path] = {}
        for qtype in types:
            rep = quantize_gguf(src, work / f"{qtype}.gguf", qtype, threads=threads)
            cand = Candidate(qtype.upper(), rep.size, rep.bits_per_weight, target.fits(rep.size, rep.bits_per_weight),
                             fallbacks=len(rep.fallbacks))
            if cand.fits and eval_text is not None:
                cand.perplexity = evaluate_gguf(rep.path, reference=None, text=eval_text, threads=threads,
                                                max_tokens=max_eval_tokens).perplexity
            choice.candidates.append(cand)
            files[cand.qtype] = rep.path
        fitting = [c for c in choice.candidates if c.fits]
        if not fitting:
            smallest = min(choice.candidates, key=lambda c: c.size)
            raise UsageError(f"no type fits {target}: the smallest is {smallest.qtype} at {smallest.size / 1e6:.1f} MB "
                             f"({smallest.bits_per_weight:.2f} bits/weight)",
                             hint="raise --target-size or start from a smaller model")
        if eval_text is not None:
            choice.chosen = min(fitting, key=lambda c: (c.perplexity, c.size))
        else:
            choice.chosen = max(fitting, key=lambda c: (c.bits_per_weight, -c.size))
        move_file(files[choice.chosen.qtype], out)  # same folder: an atomic rename of a complete file
        choice.path = out
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return choice
