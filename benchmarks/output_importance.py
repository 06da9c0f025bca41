"""The output matrix quantized alone, without and with importance from its input (the final normed hidden state).

    OMP_NUM_THREADS=2 PYTHONPATH=. python benchmarks/output_importance.py --threads 2   # SmolLM2, IQ4_NL and Q5_0
    PYTHONPATH=. python benchmarks/output_importance.py --quick                          # tiny random model

llama-imatrix collects importance for the blocks' linears only (and `output.weight` with
--process-output); with tied embeddings, as SmolLM2 has, the one matrix that is both the
input lookup and the output projection gets none. Ours collects the output side's input
(builder/importance.py) under whichever name the GGUF gives that matrix. Here every tensor
but that matrix stays f16, so the KL against the f16 model on held-out text is the
matrix's own: no importance (the baseline), the output side's importance, and a blend with
uniform weights (half the weight on the lookup side, which has no activations to weight by).
Measures and prints; never asserts.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="work folder (default: .bench/output-importance; --quick: a temporary one)")
    parser.add_argument("--quick", action="store_true", help="tiny random model, IQ4_NL only, 256 tokens")
    parser.add_argument("--types", default="IQ4_NL,Q5_0")
    parser.add_argument("--calib-tokens", type=int, default=1024)
    parser.add_argument("--eval-tokens", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    from awq_table import work_folder

    with work_folder(args.out, args.quick, ROOT / ".bench" / "output-importance") as out:
        run(args, out)


def run(args: argparse.Namespace, work: Path) -> None:
    import torch

    from edge_assistant.builder.awq import CALIBRATION_TEXT
    from edge_assistant.builder.convert import convert_hf_to_gguf
    from edge_assistant.builder.evaluate import HELDOUT_TEXT, evaluate_gguf
    from edge_assistant.builder.importance import collect_importance, output_weight
    from edge_assistant.builder.planned_compress import _load_hf, _windows
    from edge_assistant.builder.quantizer import quantize_with_plan

    torch.set_num_threads(args.threads)
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if args.quick:
        from awq_table import _tiny_hf

        hf, types, calib_tokens, eval_tokens, seq_len = _tiny_hf(work / "hf"), ["IQ4_NL"], 256, 256, 128
    else:
        from awq_table import _hf_dir, _smollm2

        hf = _hf_dir(_smollm2(), work / "hf")
        types = [t.strip().upper() for t in args.types.split(",") if t.strip()]
        calib_tokens, eval_tokens, seq_len = args.calib_tokens, args.eval_tokens, 256
    f16 = work / "f16.gguf"
    if not f16.is_file():
        convert_hf_to_gguf(hf, f16, outtype="f16")
    model, tokenizer = _load_hf(hf)
    name = output_weight(model)
    windows = _windows(tokenizer, CALIBRATION_TEXT.read_text(encoding="utf-8"), seq_len, calib_tokens)
    vec, calib_tokens = collect_importance(model, windows)[name], int(windows.numel())
    del model
    heldout = HELDOUT_TEXT.read_text(encoding="utf-8")
    weights = {"none (baseline)": None, "output side": vec, "blend with uniform": vec / vec.mean() + 1.0}
    rows = []
    for qtype in types:
        for label, imp in weights.items():
            path = work / f"{qtype}-{label.split()[0]}.gguf"
            quantize_with_plan(f16, path, {name: qtype}, importance=None if imp is None else {name: imp},
                               file_type="Q8_0", threads=args.threads)
            r = evaluate_gguf(path, reference=f16, text=heldout, threads=args.threads, max_tokens=eval_tokens)
            rows.append((qtype, label, float(r.kl_divergence or 0.0), float(r.top1_agreement or 0.0), r.tokens))
            print(rows[-1], flush=True)
            path.unlink()
    model_name = "tiny random model" if args.quick else "SmolLM2-135M"
    print(f"\n## `{name}` alone quantized, the rest f16: KL against f16 on {rows[0][4]} held-out tokens "
          f"({model_name}; importance from {calib_tokens} calibration tokens)\n")
    print("| type | importance | KL | ratio to no importance (baseline) | top-1 |")
    print("|---|---|---:|---:|---:|")
    for qtype, label, kl, top1, _n in rows:
        base = next(r[2] for r in rows if r[0] == qtype and r[1].startswith("none"))
        print(f"| {qtype} | {label} | {kl:.4f} | {kl / base if base else float('nan'):.2f} | {top1:.1%} |")
    print(f"\ntotal {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
