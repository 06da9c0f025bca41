#!/usr/bin/env bash
# Build edge-assistant's wheel and sdist from a clean export of the committed tree.
#   packaging/build_dist.sh [OUT_DIR]        (default: dist/ in the checkout)
# A clean export means that what is built is what a clone would build: no stray
# build/ or *.egg-info from earlier in-tree builds, nothing uncommitted.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
out="$(mkdir -p "${1:-$repo/dist}" && cd "${1:-$repo/dist}" && pwd)"
PY=${PYTHON:-python3}

src="$(mktemp -d "${TMPDIR:-/tmp}/edge-dist.XXXXXX")"
trap 'rm -rf "$src"' EXIT
if git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$repo" archive --format=tar HEAD | tar -x -C "$src"
else
  cp -R "$repo/." "$src"   # an unpacked sdist: no git history to export from
fi

"$PY" -m build --sdist --wheel --outdir "$out" "$src"

# The runtime wheel must not carry tests, and must carry every subpackage.
wheel="$(ls -t "$out"/edge_assistant-*.whl | head -n 1)"
"$PY" - "$wheel" <<'PYEOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
bad = [n for n in names if n.startswith("tests/")]
need = ["edge_assistant/cli.py", "edge_assistant/bundle/hub.py", "edge_assistant/bundle/manifest.py"]
missing = [n for n in need if n not in names]
if bad or missing:
    sys.exit(f"wheel check failed: tests inside {bad[:3]}, missing {missing}")
print(f"wheel check: {len(names)} files, no tests, {', '.join(need)} present")
PYEOF
ls -l "$out"
