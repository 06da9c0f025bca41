"""What `pull` costs on top of the download itself. Measures; asserts nothing.

A bundle with a base of about SIZE_MB (random weights, so zstd cannot shrink it)
is served by the fake hub on 127.0.0.1. Baseline: the same files fetched with a
plain HTTP GET each (urllib) to disk, in the same run; then the hub client's own
http_get of the same files (what any hub download costs). Then: `pull` through
huggingface-hub with our sha256 of every file and the deep bundle check (the
client's import time is its own row: the CLI pays it once per run), `pull`
of the commit already installed (re-check only), and an offline `pull`.

    PYTHONPATH=. python benchmarks/distribution_pull.py [SIZE_MB]
    PYTHONPATH=. python benchmarks/distribution_pull.py --quick    # an 8 MB base
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.pop("HF_HUB_OFFLINE", None)          # the hub client reads it once, at import
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("size_mb", nargs="?", type=int, default=64, metavar="SIZE_MB", help="base size (default 64)")
    parser.add_argument("--quick", action="store_true", help="an 8 MB base (well under a minute)")
    args = parser.parse_args()
    size_mb = 8 if args.quick else args.size_mb
    from tests.integration.fakehub import FakeHub
    from tests.integration.hubkit import make_bundle

    work = Path(tempfile.mkdtemp(prefix="edge-bench-pull-"))
    os.environ["EDGE_ASSISTANT_HOME"] = str(work / "home")
    os.environ["HF_HOME"] = str(work / "hf-home")
    try:
        bundle = make_bundle(work / "src" / "bench", name="bench", vocab=size_mb * 4096)
        total = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
        with FakeHub() as hub:
            commit = hub.publish_folder("bench/bundle", bundle)
            os.environ["HF_ENDPOINT"] = hub.url
            from edge_assistant.bundle.hub import pull_bundle

            def raw_get() -> None:
                out = work / "raw"
                for name in hub.tree("bench/bundle"):
                    target = out / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    url = f"{hub.url}/bench/bundle/resolve/{commit}/{name}"
                    with urllib.request.urlopen(url) as response, open(target, "wb") as f:
                        shutil.copyfileobj(response, f, 4 << 20)

            def client_get() -> None:
                from huggingface_hub.file_download import http_get

                out = work / "client"
                for name in hub.tree("bench/bundle"):
                    target = out / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with open(target, "wb") as f:
                        http_get(f"{hub.url}/bench/bundle/resolve/{commit}/{name}", f)

            rows = [("plain HTTP GET of every file (baseline)", _timed(raw_get))]
            rows.append(("import huggingface_hub (once per process)", _timed(lambda: __import__("huggingface_hub.hf_api"))))
            rows.append(("huggingface-hub http_get of every file", _timed(client_get)))
            rows.append(("pull: download + sha256 + deep check + install", _timed(lambda: pull_bundle("bench/bundle"))))
            rows.append(("pull again, same commit (re-check only)", _timed(lambda: pull_bundle("bench/bundle"))))
            os.environ["HF_HUB_OFFLINE"] = "1"
            rows.append(("pull offline (installed copy, re-check)", _timed(lambda: pull_bundle("bench/bundle"))))
            del os.environ["HF_HUB_OFFLINE"]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    base = rows[0][1]
    print(f"bundle: {total / 1e6:.1f} MB over loopback; {os.cpu_count()} CPUs")
    print(f"{'what':<50} {'seconds':>8} {'MB/s':>8} {'x baseline':>10}")
    for what, seconds in rows:
        print(f"{what:<50} {seconds:>8.2f} {total / 1e6 / seconds:>8.1f} {seconds / base:>10.2f}")


if __name__ == "__main__":
    main()
