#!/usr/bin/env bash
# Install edge-assistant with pipx, as a user would, then run it with networking off.
#
#   packaging/pipx_smoke.sh [SOURCE]
#
# SOURCE is what pipx installs: a wheel, or a folder; by default a clean export of
# this checkout's committed tree (what a fresh clone holds). Everything goes into a
# throw-away PIPX_HOME, PIPX_BIN_DIR and EDGE_ASSISTANT_HOME, removed at the end.
# The install needs the package registry; the runs after it get no network at all
# (`unshare -n`, a new network namespace) or, where the machine does not allow
# that, a socket guard that refuses anything but loopback. They check:
#   edge-assistant --version / paths / doctor, and an `ask` answered by the
#   embedded demo model (SmolLM2-135M, the `demo` extra); and that the runtime
#   install holds no torch.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
PY=${PYTHON:-python3}
work="$(mktemp -d "${TMPDIR:-/tmp}/edge-pipx-smoke.XXXXXX")"
trap 'rm -rf "$work"' EXIT

step() { printf '\n== %s\n' "$*"; }
elapsed() { printf '   (%ss)\n' "$(( $(date +%s) - $1 ))"; }

if [[ $# -ge 1 ]]; then
  source_spec="$1"
elif git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
  mkdir "$work/src"
  git -C "$repo" archive --format=tar HEAD | tar -x -C "$work/src"
  source_spec="$work/src"
else
  source_spec="$repo"   # an unpacked sdist: no git history to export from
fi

export PIPX_HOME="$work/pipx" PIPX_BIN_DIR="$work/bin" PIPX_MAN_DIR="$work/man"
export EDGE_ASSISTANT_HOME="$work/home"   # never the real settings, bundles or cache
export EDGE_ASSISTANT_THREADS=1
unset EDGE_ASSISTANT_BUNDLE EDGE_ASSISTANT_MODIFIER HF_ENDPOINT
# Leave out the llama.cpp parts the runtime never uses, should pip have to compile it
# (pip reuses a wheel it built before on this machine).
export CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF}"

step "pipx install ${source_spec}[demo] into a throw-away PIPX_HOME"
t=$(date +%s)
"$PY" -m pipx install --python "$PY" "${source_spec}[demo]"
elapsed "$t"
app="$PIPX_BIN_DIR/edge-assistant"
venv_py="$PIPX_HOME/venvs/edge-assistant/bin/python"
[[ -x "$app" ]] || { echo "pipx_smoke: $app was not installed" >&2; exit 1; }

step "the runtime install holds no builder stack"
"$venv_py" - <<'PYEOF'
import importlib.util
found = [m for m in ("torch", "transformers", "peft") if importlib.util.find_spec(m) is not None]
if found:
    raise SystemExit(f"pipx_smoke: the runtime install pulled in {found}")
print("no torch, transformers or peft")
PYEOF

# Networking off: a network namespace when the kernel lets us make one, else the socket guard.
if unshare -n true 2>/dev/null; then
  offline() { unshare -n -- "$@"; }
  echo "networking: off (unshare -n: a network namespace with no interfaces up)"
else
  guard="$repo/tests/integration/netguard"
  offline() { PYTHONPATH="$guard${PYTHONPATH:+:$PYTHONPATH}" EDGE_NETGUARD_LOG="$work/netguard.log" "$@"; }
  echo "networking: NOTE unshare -n is not allowed here; using the loopback-only socket guard instead"
fi

step "edge-assistant --version"
version="$(offline "$app" --version)"
echo "$version"
[[ "$version" == edge-assistant* ]] || { echo "pipx_smoke: unexpected --version output" >&2; exit 1; }

step "edge-assistant paths"
offline "$app" paths

step "edge-assistant doctor"
offline "$app" doctor

step "edge-assistant ask (embedded demo model)"
t=$(date +%s)
answer="$(offline "$app" ask "Name one colour of the rainbow." --max-tokens 16 --temperature 0 --seed 1 --json)"
elapsed "$t"
"$PY" - "$answer" <<'PYEOF'
import json, sys
answer = json.loads(sys.argv[1])
if not answer["text"].strip() or answer["completion_tokens"] < 1:
    raise SystemExit(f"pipx_smoke: empty answer {answer!r}")
print(f"answer: {answer['text'].strip()!r} ({answer['completion_tokens']} tokens, {answer['decode_tok_s']} tok/s)")
PYEOF

if [[ -s "$work/netguard.log" ]]; then
  echo "pipx_smoke: the runtime tried to reach the network:" >&2
  cat "$work/netguard.log" >&2
  exit 1
fi
step "pipx smoke passed"
