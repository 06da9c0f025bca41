"""Load on `edge-assistant serve`: N concurrent streaming clients on loopback against the real server.

    PYTHONPATH=. python benchmarks/serve_load.py            # 50 clients, 32 tokens, queue 16 and queue 64
    PYTHONPATH=. python benchmarks/serve_load.py --quick    # 50 clients, 4 tokens, default queue only

Starts the real CLI (`edge-assistant serve --port 0`) on the embedded demo model in a fresh
home, then for each queue size: one client alone (the baseline), then all clients at once
behind a barrier. Reports how many completed, got 429 (with Retry-After), got another
status, or were reset; p50/p99 time to first event (TTFT) as a ratio to the lone client's;
and /health right after. Measures; never asserts.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Outcome:
    kind: str                 # completed | 429 | status NNN | reset | error: ...
    ttft_s: float | None = None
    total_s: float = 0.0
    retry_after: str | None = None


def _client(port: int, body: bytes, start: threading.Barrier | None) -> Outcome:
    if start is not None:
        start.wait()
    began = time.perf_counter()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        if response.status != 200:
            response.read()
            kind = "429" if response.status == 429 else f"status {response.status}"
            return Outcome(kind, None, time.perf_counter() - began, response.getheader("Retry-After"))
        ttft, done = None, False
        while not done and (line := response.fp.readline()):  # the raw chunked stream: data lines intact
            if line.startswith(b"data:"):
                ttft = ttft if ttft is not None else time.perf_counter() - began
                done = line.strip() == b"data: [DONE]"
        conn.close()
        return Outcome("completed" if done else "truncated", ttft, time.perf_counter() - began)
    except ConnectionResetError:
        return Outcome("reset", None, time.perf_counter() - began)
    except OSError as exc:
        return Outcome(f"error: {type(exc).__name__}", None, time.perf_counter() - began)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _health(port: int) -> tuple[int | str, float, dict]:
    began = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/health")
    response = conn.getresponse()
    body = json.loads(response.read())
    return response.status, time.perf_counter() - began, body


def _start_server(home: Path, queue: int, threads: int) -> tuple[subprocess.Popen[str], int]:
    env = dict(os.environ, EDGE_ASSISTANT_HOME=str(home),
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.Popen([sys.executable, "-m", "edge_assistant.cli", "serve", "--port", "0", "--quiet",
                             "--threads", str(threads), "--queue", str(queue), "--max-connections", "256"],
                            stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        found = re.search(r"http://[^:]+:(\d+)/v1", line)
        if found:
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # keep draining
            return proc, int(found.group(1))
    raise SystemExit("the server did not start:\n" + "".join(lines))


def _run(args: argparse.Namespace, queue: int, home: Path) -> list[tuple[str, str, str]]:
    proc, port = _start_server(home, queue, args.threads)
    try:
        body = json.dumps({"model": "none", "stream": True, "max_tokens": args.max_tokens, "temperature": 0,
                           "messages": [{"role": "user", "content": "Write a short poem about the sea."}]}).encode()
        _client(port, body, None)  # warm-up: load pages, fill caches
        alone = [_client(port, body, None) for _ in range(3)]
        base = statistics.median(o.ttft_s or 0.0 for o in alone)
        start = threading.Barrier(args.clients)
        outcomes: list[Outcome] = [Outcome("error: not run")] * args.clients

        def one(index: int) -> None:
            outcomes[index] = _client(port, body, start)

        began = time.perf_counter()
        workers = [threading.Thread(target=one, args=(i,)) for i in range(args.clients)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        wall = time.perf_counter() - began
        try:
            status, health_s, health = _health(port)
        except OSError as exc:
            status, health_s, health = f"failed ({type(exc).__name__}; server exit code {proc.poll()})", 0.0, {}
    finally:
        proc.terminate()
        proc.wait(30)
    kinds: dict[str, int] = {}
    for o in outcomes:
        kinds[o.kind] = kinds.get(o.kind, 0) + 1
    ttfts = [o.ttft_s for o in outcomes if o.ttft_s is not None]
    retry = sorted({o.retry_after for o in outcomes if o.retry_after})
    label = f"queue {queue}"
    rows = [
        (label, "lone client TTFT (baseline)", f"{base * 1000:.0f} ms", "1.00x"),
        (label, "completed", str(kinds.pop("completed", 0)), f"of {args.clients}"),
        (label, "429 (Retry-After)", str(kinds.pop("429", 0)), f"Retry-After {','.join(retry) or '-'} s"),
        (label, "reset", str(kinds.pop("reset", 0)), "goal 0"),
    ]
    rows += [(label, kind, str(n), "") for kind, n in sorted(kinds.items())]
    if ttfts:
        for name, q in (("p50", 0.5), ("p99", 0.99)):
            value = _percentile(ttfts, q)
            rows.append((label, f"{name} TTFT of completed", f"{value * 1000:.0f} ms", f"{value / base:.2f}x"))
    rows.append((label, "all clients done", f"{wall:.1f} s", ""))
    rows.append((label, "/health right after", f"{status} in {health_s * 1000:.0f} ms",
                 f"waiting {health.get('queue', {}).get('waiting', '?')}"))
    return [(a, b, c + (f"  [{d}]" if d else "")) for a, b, c, d in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--queues", default="16,64", help="queue sizes to run, comma-separated")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads in the server")
    parser.add_argument("--quick", action="store_true", help="4 tokens, the default queue only (well under a minute)")
    args = parser.parse_args()
    if args.quick:
        args.max_tokens, args.queues = 4, "16"
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="serve-load-") as tmp:
        for queue in (int(q) for q in args.queues.split(",")):
            print(f"running {args.clients} streaming clients, {args.max_tokens} tokens each, queue {queue}...",
                  file=sys.stderr, flush=True)
            rows += _run(args, queue, Path(tmp) / "home")
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    print(f"serve load: {args.clients} concurrent streaming clients on loopback, {args.max_tokens} tokens each, "
          f"{args.threads} llama.cpp thread(s); ratios against a lone client in the same run")
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, width)))


if __name__ == "__main__":
    main()
