"""A separate process that unpacks a bundle's base, for multi-process tests.

    python -m tests.support.unpack_worker BUNDLE CACHE_DIR [--delay S] [--ready F --go F] [--fsize-limit N]

Logs edge_assistant's INFO lines on stderr (the tests count "unpacking" lines to
see which process did the work) and prints one JSON line on stdout: the
unpacked path, or the error's class and message. ``--delay`` sleeps after each
unpacked chunk so other processes (or a SIGKILL) can meet it mid-unpack;
``--ready``/``--go`` line up several workers to start at the same instant;
``--fsize-limit`` sets RLIMIT_FSIZE so the kernel refuses any write past N bytes.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import signal
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("bundle", type=Path)
    parser.add_argument("cache", type=Path)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--ready", type=Path)
    parser.add_argument("--go", type=Path)
    parser.add_argument("--fsize-limit", type=int)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(process)d %(name)s: %(message)s")
    if args.fsize_limit is not None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (args.fsize_limit, args.fsize_limit))

    from edge_assistant.bundle.manifest import load_manifest
    from edge_assistant.bundle.unpack import unpack_base
    from edge_assistant.errors import EdgeAssistantError

    manifest = load_manifest(args.bundle)
    if args.ready is not None:
        args.ready.touch()
    if args.go is not None:
        while not args.go.exists():
            time.sleep(0.002)

    def slow(n: int) -> None:
        time.sleep(args.delay)

    try:
        path = unpack_base(args.bundle, manifest, cache_dir=args.cache, progress=slow if args.delay else None)
    except (EdgeAssistantError, OSError) as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}), flush=True)
        return 1
    print(json.dumps({"path": str(path)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
