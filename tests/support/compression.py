"""The compression trade-off, measured: each type with and without AWQ, as a table (tests and benchmarks).

`measure_compression` converts a float model to f16 GGUF, quantizes it to each
type plainly and after AWQ, and scores every file through llama.cpp against the
f16 one on held-out text; `compression_report` turns the rows into a Markdown
table (benchmarks/awq_table.py prints it).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edge_assistant.builder.evaluate import evaluate_gguf
from tests.support.zstd_study import measure_zstd

DEFAULT_TYPES = ("Q8_0", "Q5_0", "Q4_0")  # 8-, 5- and 4-bit block-32 types: they fit 576-wide rows


@dataclass(frozen=True)
class CompressionRow:
    qtype: str  # "F16" or a quantization type
    awq: bool
    size: int
    bits_per_weight: float
    perplexity: float
    delta_perplexity: float  # against the f16 row
    kl_divergence: float  # KL(f16 || this) per token, nats
    top1_agreement: float  # share of positions where this and f16 rank the same token first
    zstd_ratio: float  # packed / unpacked at the report's zstd level
    seconds: float  # convert (f16) or quantize time; with AWQ, AWQ + convert + quantize
    path: Path
    eval_tokens_per_s: float = 0.0  # llama.cpp batched evaluation speed of this file
    awq_seconds_per_block: float = 0.0  # mean AWQ time per decoder block (AWQ rows only)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}


def compression_report(rows: Sequence[CompressionRow], *, zstd_level: int = 3, text_name: str = "held-out text",
                       tokens: int | None = None) -> str:
    """Markdown: type, size, bits per weight, perplexity, Δperplexity, KL, top-1, zstd ratio."""
    scored = f" ({tokens} tokens)" if tokens else ""
    lines = [
        f"Quality measured through llama.cpp on {text_name}{scored}, never used for calibration; "
        f"KL and top-1 against the f16 GGUF; zstd ratio = packed/unpacked at level {zstd_level}.",
        "",
        "| type | AWQ | size (MB) | bits/weight | perplexity | Δperplexity | KL (nats) | top-1 | zstd ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        awq = "—" if r.qtype == "F16" else ("yes" if r.awq else "no")
        lines.append(
            f"| {r.qtype} | {awq} | {r.size / 1e6:.1f} | {r.bits_per_weight:.2f} | {r.perplexity:.3f} | "
            f"{r.delta_perplexity:+.3f} | {r.kl_divergence:.4f} | {r.top1_agreement:.1%} | {r.zstd_ratio:.3f} |"
        )
    gaps = {(r.qtype, r.awq): r.delta_perplexity for r in rows}
    notes = []
    for qtype in dict.fromkeys(r.qtype for r in rows if r.qtype != "F16"):
        plain, scaled = gaps.get((qtype, False)), gaps.get((qtype, True))
        if plain is not None and scaled is not None and plain > 0:
            notes.append(f"{qtype}: AWQ leaves {scaled / plain:.0%} of the perplexity gap of plain quantization")
    if notes:
        lines += ["", *[f"- {n}" for n in notes]]
    return "\n".join(lines) + "\n"


def _bits_per_weight(path: Path) -> float:
    from edge_assistant.builder.gguf_index import read_tensor_index

    tensors = read_tensor_index(path)
    n_bytes = sum(t.nbytes for t in tensors)
    n_weights = sum(t.n_elements for t in tensors)
    return 8.0 * n_bytes / n_weights


def _awq_hf_copy(hf_dir: Path, calib_text: str, qtype: str, out_dir: Path, n_grid: int, clip: bool,
                 search_tokens: int) -> Any:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from edge_assistant.builder.awq import apply_awq

    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    report = apply_awq(model, tokenizer, [calib_text], qtype=qtype, n_grid=n_grid, clip=clip,
                       search_tokens=search_tokens)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return report


def measure_compression(
    hf_dir: Path | str,
    *,
    calib_text: str,
    eval_text: str,
    workdir: Path | str,
    source_gguf: Path | str | None = None,
    types: Sequence[str] = DEFAULT_TYPES,
    awq: bool = True,
    n_grid: int = 20,
    clip: bool = True,
    search_tokens: int = 1024,
    threads: int = 1,
    zstd_level: int = 3,
    max_eval_tokens: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[CompressionRow]:
    """Rows for f16 and each type (plain, and after AWQ when `awq`); GGUFs are kept in `workdir`."""
    from edge_assistant.builder.convert import convert_hf_to_gguf
    from edge_assistant.builder.quantize import quantize_gguf

    hf_dir, workdir = Path(hf_dir), Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _msg: None)
    src = Path(source_gguf) if source_gguf is not None else None

    t0 = time.perf_counter()
    f16 = convert_hf_to_gguf(hf_dir, workdir / "f16.gguf", outtype="f16", source_gguf=src)
    f16_seconds = time.perf_counter() - t0
    say(f"f16: converted in {f16_seconds:.1f}s")
    base = evaluate_gguf(f16, reference=None, text=eval_text, threads=threads, max_tokens=max_eval_tokens)

    def row(qtype: str, with_awq: bool, path: Path, seconds: float, per_block: float = 0.0) -> CompressionRow:
        if qtype == "F16":
            ppl, kl, top1 = base.perplexity, 0.0, 1.0  # the reference against itself, by definition
            speed = base.tokens_per_s
        else:
            res = evaluate_gguf(path, reference=f16, text=eval_text, threads=threads, max_tokens=max_eval_tokens)
            ppl, kl, top1 = res.perplexity, float(res.kl_divergence or 0.0), float(res.top1_agreement or 0.0)
            speed = res.tokens_per_s
        ratio = measure_zstd(path, (zstd_level,))[0].ratio
        say(f"{qtype}{' +AWQ' if with_awq else ''}: perplexity {ppl:.3f}, zstd {ratio:.3f}")
        return CompressionRow(qtype, with_awq, path.stat().st_size, _bits_per_weight(path), ppl,
                              ppl - base.perplexity, kl, top1, ratio, seconds, path, speed, per_block)

    rows = [row("F16", False, f16, f16_seconds)]
    for qtype in types:
        t0 = time.perf_counter()
        plain = quantize_gguf(f16, workdir / f"{qtype}.gguf", qtype, threads=threads).path
        rows.append(row(qtype.upper(), False, plain, time.perf_counter() - t0))
    if awq:
        for qtype in types:
            t0 = time.perf_counter()
            scaled_dir = Path(tempfile.mkdtemp(prefix=f"awq-{qtype}-", dir=workdir))
            try:
                report = _awq_hf_copy(hf_dir, calib_text, qtype, scaled_dir, n_grid, clip, search_tokens)
                scaled_f16 = convert_hf_to_gguf(scaled_dir, workdir / f"awq-{qtype}-f16.gguf", source_gguf=src)
            finally:
                shutil.rmtree(scaled_dir, ignore_errors=True)
            out = quantize_gguf(scaled_f16, workdir / f"awq-{qtype}.gguf", qtype, threads=threads).path
            scaled_f16.unlink()
            per_block = sum(report.seconds_per_block) / max(1, len(report.seconds_per_block))
            rows.append(row(qtype.upper(), True, out, time.perf_counter() - t0, per_block))
    return rows
