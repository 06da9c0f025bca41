"""Router latency and accuracy: keyword-only vs embedding-only vs combined, in one table.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/router_latency.py [--router DIR] [--repeats N]
    PYTHONPATH=. python benchmarks/router_latency.py --quick    # the shipped starter router, 1 repeat

Without --router it fits a router from the package's seed prompts (distilling
the embedding once into .bench/, about 80-120 s the first time). Accuracy is
measured on tests/data/router_eval.jsonl, which the fit never sees. Latency is
per decision (one `route()` call, single thread), over every evaluation prompt
times --repeats, after a warm-up. The baseline row is keyword-only, measured in
this run; the ratios compare against it. Measures, never asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

from edge_assistant.router.router import FEATURE_SETS, Router

ROOT = Path(__file__).resolve().parents[1]
STARTER_ROUTER = ROOT / "edge_assistant" / "starter" / "router"
EVAL_FILE = ROOT / "tests" / "data" / "router_eval.jsonl"
BENCH_DIR = ROOT / ".bench"
EDGE_INPUTS = {"empty": "", "1 MB text": "please fix this " * 65536, "emoji only": "😀🚀🔥🎉",
               "chinese": "请帮我写一首关于秋天的诗"}


def fitted_router_dir() -> Path:
    from edge_assistant.builder import router_embedding
    from edge_assistant.builder.router_fit import fit_router
    from edge_assistant.builder.router_seed import load_examples

    embedding = router_embedding.prepare(None, BENCH_DIR / "router-embedding")
    return fit_router(load_examples(), BENCH_DIR / "router", embedding_source=embedding, seed=0)


def measure(router: Router, rows: list[dict], repeats: int) -> dict[str, float]:
    for row in rows[:20]:  # warm-up: first calls pay for lazy allocations
        router.route(row["prompt"])
    times, cpu_times = [], []
    correct = 0
    for _ in range(repeats):
        for row in rows:
            cpu_started = time.thread_time()
            started = time.perf_counter()
            decision = router.route(row["prompt"])
            times.append((time.perf_counter() - started) * 1000)
            cpu_times.append((time.thread_time() - cpu_started) * 1000)
            correct += (decision.modifier or "none") == row["label"]
    return {"accuracy": correct / (len(rows) * repeats), "p50": float(np.percentile(times, 50)),
            "p99": float(np.percentile(times, 99)), "mean": statistics.fmean(times),
            "cpu_p50": float(np.percentile(cpu_times, 50)), "cpu_p99": float(np.percentile(cpu_times, 99))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--router", type=Path, default=None, help="a fitted router folder (default: fit one)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true",
                        help="the shipped starter router instead of fitting one, 1 repeat (well under a minute)")
    args = parser.parse_args()
    if args.quick:
        args.repeats = 1
    router_dir = args.router or (STARTER_ROUTER if args.quick else fitted_router_dir())
    rows = [json.loads(line) for line in EVAL_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]

    results = {fs: measure(Router.load(router_dir, feature_set=fs), rows, args.repeats) for fs in FEATURE_SETS}
    base = results["keyword"]
    always_base = sum(r["label"] == "none" for r in rows) / len(rows)

    print(f"router: {router_dir}   eval prompts: {len(rows)} x {args.repeats}   "
          f"load average: {os.getloadavg()[0]:.2f}   OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    header = (f"{'features':<22}{'accuracy':>9}{'Δ acc':>8}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}"
              f"{'cpu p50':>9}{'cpu p99':>9}{'p50 ×':>8}{'p99 ×':>8}")
    print(header)
    print("-" * len(header))
    print(f"{'always base (floor)':<22}{always_base:>9.1%}{always_base - base['accuracy']:>+8.1%}")
    for fs in ("keyword", "embedding", "combined"):
        r = results[fs]
        label = fs + (" (baseline)" if fs == "keyword" else "")
        print(f"{label:<22}{r['accuracy']:>9.1%}{r['accuracy'] - base['accuracy']:>+8.1%}{r['p50']:>9.3f}"
              f"{r['p99']:>9.3f}{r['mean']:>9.3f}{r['cpu_p50']:>9.3f}{r['cpu_p99']:>9.3f}"
              f"{r['p50'] / base['p50']:>8.2f}{r['p99'] / base['p99']:>8.2f}")
    print("targets: p50 <= 1 ms, p99 <= 5 ms per decision; accuracy >= 90%")
    print("p50/p99: wall clock per decision; cpu p50/p99: this thread's CPU time, which leaves out the time\n"
          "the process waited for a core (on a shared machine the wall p99 is mostly that wait)")

    combined = Router.load(router_dir)
    print("\nawkward inputs (combined, median of 21 calls):")
    for name, text in EDGE_INPUTS.items():
        times = []
        for _ in range(21):
            started = time.perf_counter()
            combined.route(text)
            times.append((time.perf_counter() - started) * 1000)
        print(f"  {name:<12}{statistics.median(times):>8.3f} ms")


if __name__ == "__main__":
    main()
