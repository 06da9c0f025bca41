"""Ours (AWQ + importance + per-tensor types to a size) against llama.cpp's llama-imatrix + llama-quantize.

    OMP_NUM_THREADS=1 PYTHONPATH=. nice -n 10 python benchmarks/awq_compress.py --out .bench/frontier
    PYTHONPATH=. python benchmarks/awq_compress.py --quick      # tiny random model, one size point (Q4_0)

On the real SmolLM2-135M (f16 from our converter): llama.cpp's tools are built from the
llama.cpp source vendored in the installed llama-cpp-python sdist (benchmarks/
llama_cpp_tools.py, cached outside the repo). Both sides get the same calibration text
(builder/data/calibration.txt through the chat template, the same tokens) and are scored
on the same held-out text (builder/data/heldout.txt, never used for calibration) through
llama.cpp against the f16 GGUF made here: KL, perplexity, top-1, at equal file sizes
(ours is planned to the size of llama.cpp's file). Also checks that, given the same
importance values in llama.cpp's imatrix format, `llama-quantize --imatrix` writes the
same tensor bytes as our quantizer. Measures and prints; never asserts.

--quick runs the same steps on a tiny random 256-wide model with `llama_model_quantize`
(the library call) standing in for the llama.cpp tools, so it needs no build, at one size
point (Q4_0) on 256 held-out tokens, in a temporary folder unless --out is given.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from edge_assistant.runtime.llama_load import set_weight_repack

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))



def _smollm2_hf(out: Path) -> tuple[Path, Path]:
    from awq_table import _hf_dir, _smollm2

    source = _smollm2()
    return _hf_dir(source, out / "hf"), source


def _tiny_hf(out: Path) -> Path:
    from awq_table import _tiny_hf as tiny

    return tiny(out / "hf")


def _tensor_bytes(path: Path) -> dict[str, bytes]:
    from gguf import GGUFReader

    return {t.name: bytes(t.data.tobytes()) for t in GGUFReader(path).tensors}


class LlamaCpp:
    """llama-imatrix / llama-quantize as subprocesses, or the library call in --quick mode."""

    def __init__(self, tools: dict[str, Path] | None, threads: int, log: Path) -> None:
        self.tools, self.threads, self.log = tools, threads, log

    def _run(self, cmd: list[str]) -> None:
        with open(self.log, "a", encoding="utf-8") as fh:
            fh.write("$ " + " ".join(cmd) + "\n")
            fh.flush()
            done = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=False)
        if done.returncode != 0:
            sys.exit(f"error: {Path(cmd[0]).name} failed (exit {done.returncode}); see {self.log}")

    def imatrix(self, f16: Path, calib: Path, out: Path, ctx: int, chunks: int) -> Path:
        if self.tools is None:
            return out
        if not out.is_file():
            self._run([str(self.tools["llama-imatrix"]), "-m", str(f16), "-f", str(calib), "-o", str(out),
                       "-c", str(ctx), "--chunks", str(chunks), "-t", str(self.threads), "--no-ppl"])
        return out

    def quantize(self, f16: Path, out: Path, mix: str, imatrix: Path | None = None) -> Path:
        if out.is_file():
            return out
        if self.tools is None:  # llama_model_quantize, the library code llama-quantize runs
            from edge_assistant.builder.importance import read_imatrix
            from edge_assistant.builder.quantize import quantize_gguf

            quantize_gguf(f16, out, mix, threads=self.threads, importance=read_imatrix(imatrix) if imatrix else None)
            return out
        cmd = [str(self.tools["llama-quantize"])]
        if imatrix is not None:
            cmd += ["--imatrix", str(imatrix)]
        self._run(cmd + [str(f16), str(out), mix, str(self.threads)])
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="work folder (default: .bench/frontier; --quick: a temporary one)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny random model, one size point (Q4_0), no llama.cpp build (about a minute)")
    parser.add_argument("--points", default="IQ4_NL:Q4_0:IQ4_XS,Q5_0:Q4_K_M",
                        help="size points: llama.cpp mixes per point (':' = about the same size), ours planned "
                             "to the largest of the point's llama.cpp files")
    parser.add_argument("--calib-tokens", type=int, default=1024, help="tokens both sides calibrate on")
    parser.add_argument("--sensitivity-tokens", type=int, default=256)
    parser.add_argument("--grid", type=int, default=10)
    parser.add_argument("--eval-tokens", type=int, default=None, help="default: the whole held-out text")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-tools", action="store_true",
                        help="skip building llama-imatrix/llama-quantize: llama.cpp rows through llama_model_quantize "
                             "(the same library code), without the llama-imatrix rows")
    parser.add_argument("--repack", action="store_true",
                        help="force llama.cpp's weight repacking on (default: the runtime's auto choice; on crashes on AMX CPUs)")
    args = parser.parse_args()
    if args.quick:
        args.points = "Q4_0"
    from awq_table import work_folder

    with work_folder(args.out, args.quick, ROOT / ".bench" / "frontier") as out:
        run(args, out)


def run(args: argparse.Namespace, work: Path) -> None:
    import torch

    from edge_assistant.builder.awq import CALIBRATION_TEXT
    from edge_assistant.builder.convert import convert_hf_to_gguf
    from edge_assistant.builder.evaluate import HELDOUT_TEXT, evaluate_gguf
    from edge_assistant.builder.importance import chat_calibration_texts
    from edge_assistant.builder.planned_compress import compress_planned
    from edge_assistant.builder.quantizer import quantize_mix
    from edge_assistant.builder.size_target import SizeTarget

    torch.set_num_threads(args.threads)
    # Every model this benchmark loads goes through the project's loader (runtime/llama_load.py).
    set_weight_repack("on" if args.repack else "auto")
    out = work / ("quick" if args.quick else "smollm2")
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    seq_len = 128 if args.quick else 256
    calib_tokens = 256 if args.quick else args.calib_tokens
    sens_tokens = 128 if args.quick else args.sensitivity_tokens
    grid = 4 if args.quick else args.grid
    eval_tokens = 256 if args.quick and args.eval_tokens is None else args.eval_tokens
    if args.quick:
        hf = _tiny_hf(out)
        tools = None
    elif args.no_tools:
        hf, _source = _smollm2_hf(out)
        tools = None
    else:
        hf, _source = _smollm2_hf(out)
        from llama_cpp_tools import llama_tools

        t0 = time.perf_counter()
        tools = llama_tools(jobs=2)
        print(f"llama.cpp tools ready ({time.perf_counter() - t0:.0f}s): {tools['llama-quantize'].parent}", flush=True)
    llama = LlamaCpp(tools, args.threads, out / "llama-cpp.log")

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(hf)
    calib_raw = CALIBRATION_TEXT.read_text(encoding="utf-8")
    heldout = HELDOUT_TEXT.read_text(encoding="utf-8")
    calib_chat = out / "calibration.chat.txt"  # what both sides see: the chat-rendered calibration text
    calib_chat.write_text("".join(chat_calibration_texts(tokenizer, [calib_raw])), encoding="utf-8")

    f16 = out / "f16.gguf"
    if not f16.is_file():
        convert_hf_to_gguf(hf, f16, outtype="f16")
    chunks = max(1, calib_tokens // seq_len)
    imatrix = llama.imatrix(f16, calib_chat, out / "llama-imatrix.gguf", seq_len, chunks)

    def score(path: Path) -> dict:
        r = evaluate_gguf(path, reference=f16, text=heldout, threads=args.threads, max_tokens=eval_tokens)
        return {"size": path.stat().st_size, "kl": float(r.kl_divergence or 0.0), "ppl": r.perplexity,
                "top1": float(r.top1_agreement or 0.0), "tokens": r.tokens}

    base = evaluate_gguf(f16, reference=None, text=heldout, threads=args.threads, max_tokens=eval_tokens)
    rows: list[dict] = []
    equal_checks: list[dict] = []
    for point in args.points.split(","):
        mixes = [m.strip().upper() for m in point.split(":") if m.strip()]
        sized = []
        for mix in mixes:
            plain = llama.quantize(f16, out / f"llama-{mix}.gguf", mix)
            rows.append({"point": mixes[0], "what": f"llama.cpp {mix}", **score(plain)})
            print(rows[-1], flush=True)
            if tools is None and not args.quick:
                sized.append(plain.stat().st_size)
                continue
            if args.quick:
                from edge_assistant.builder.importance import write_imatrix

                if not imatrix.is_file():  # quick: our importance on the plain model stands in for llama-imatrix
                    from edge_assistant.builder.importance import collect_importance
                    from edge_assistant.builder.planned_compress import _load_hf, _windows

                    model, tok = _load_hf(hf)
                    vectors = collect_importance(model, _windows(tok, calib_raw, seq_len, calib_tokens))
                    # only what llama-imatrix collects: the blocks' linears, never a tied embedding
                    write_imatrix(imatrix, {n: v for n, v in vectors.items() if n.startswith("blk.")})
            weighted = llama.quantize(f16, out / f"llama-imatrix-{mix}.gguf", mix, imatrix)
            rows.append({"point": mixes[0], "what": f"llama.cpp imatrix {mix}", **score(weighted)})
            print(rows[-1], flush=True)
            sized.append(weighted.stat().st_size)
        target = SizeTarget(bytes=max(sized))
        keep = out / f"ours-{mixes[0]}-work"
        t0 = time.perf_counter()
        ours = compress_planned(hf, target, out / f"ours-{mixes[0]}.gguf", calib_text=calib_raw, n_grid=grid,
                                search_tokens=calib_tokens, sensitivity_tokens=sens_tokens, seq_len=seq_len,
                                keep=keep, say=lambda m: print(m, flush=True))
        seconds = time.perf_counter() - t0
        rows.append({"point": mixes[0], "what": f"ours: AWQ({ours.awq_type}) + importance + planned types",
                     **score(ours.path), "seconds": seconds})
        print(rows[-1], flush=True)
        (out / f"ours-{mixes[0]}-plan.md").write_text(ours.plan.table(), encoding="utf-8")
        # Same importance values, both quantizers: our file's tensors must equal llama.cpp's.
        for mix in mixes:
            theirs = llama.quantize(keep / "f16.gguf", out / f"awq-llama-imatrix-{mix}.gguf", mix,
                                    keep / "importance.gguf")
            from edge_assistant.builder.importance import read_imatrix

            mine = quantize_mix(keep / "f16.gguf", out / f"awq-ours-{mix}.gguf", mix,
                                importance=read_imatrix(keep / "importance.gguf")).path
            a, b = _tensor_bytes(theirs), _tensor_bytes(mine)
            same = sum(1 for n in a if a[n] == b.get(n))
            equal_checks.append({"mix": mix, "tensors": len(a), "equal": same, "names_equal": set(a) == set(b)})
            rows.append({"point": mixes[0], "what": f"AWQ + same importance, {mix}, by llama.cpp (--imatrix)",
                         **score(theirs)})
            print(rows[-1], equal_checks[-1], flush=True)

    print(f"\n## {'tiny random model (--quick)' if args.quick else 'SmolLM2-135M'}: equal sizes, "
          f"held-out {rows[0]['tokens']} tokens, f16 perplexity {base.perplexity:.3f}\n")
    print(f"Calibration: {calib_tokens} tokens of data/calibration.txt through the chat template, both sides "
          f"(llama-imatrix -c {seq_len} --chunks {chunks}); ours: AWQ grid {grid}, sensitivity on {sens_tokens} tokens.\n")
    print("| size point | file | MB | KL | ratio to llama.cpp best (baseline) | perplexity | top-1 |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for point in dict.fromkeys(r["point"] for r in rows):
        group = [r for r in rows if r["point"] == point]
        best = min(r["kl"] for r in group if r["what"].startswith("llama.cpp"))
        for r in group:
            print(f"| {point} | {r['what']} | {r['size'] / 1e6:.2f} | {r['kl']:.4f} | {r['kl'] / best:.2f} | "
                  f"{r['ppl']:.3f} | {r['top1']:.1%} |")
    print("\n| same importance, mix | tensors | byte-identical to llama-quantize --imatrix |")
    print("|---|---:|---:|")
    for c in equal_checks:
        print(f"| {c['mix']} | {c['tensors']} | {c['equal']} |")
    print(f"\ntotal {time.perf_counter() - t_start:.0f}s")
    (out / "results.json").write_text(json.dumps({"rows": rows, "equal": equal_checks,
                                                  "f16_perplexity": base.perplexity,
                                                  "args": {k: str(v) for k, v in vars(args).items()}}, indent=1),
                                      encoding="utf-8")


if __name__ == "__main__":
    main()
