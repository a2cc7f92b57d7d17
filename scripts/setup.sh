#!/usr/bin/env bash
# Installs everything fedmarket needs, idempotently: a .venv with the Python packages
# (torch pinned to the local 2.13.0 CPU build first, so no resolver pulls a CUDA build) and the
# Node tools from package-lock.json (Anvil, solcjs, OpenZeppelin, the js-ipfs node).
# Re-runs are fast: each half is skipped while its inputs are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV=.venv
STAMP_DIR=.venv/.fedmarket-stamps

stamp_of() { cat "$@" | sha256sum | cut -c1-16; }

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
mkdir -p "$STAMP_DIR"

py_stamp=$(stamp_of pyproject.toml scripts/setup.sh)
if [ "$(cat "$STAMP_DIR/python" 2>/dev/null)" != "$py_stamp" ]; then
  echo "setup: installing Python packages"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q "torch==2.13.0"
  "$VENV/bin/python" -m pip install -q -e ".[dev]"
  "$VENV/bin/python" - <<'PY'
import torch
assert torch.__version__.startswith("2.13.0") and not torch.version.cuda, f"unexpected torch build {torch.__version__}"
PY
  echo "$py_stamp" > "$STAMP_DIR/python"
fi

node_stamp=$(stamp_of package.json package-lock.json)
if [ ! -d node_modules ] || [ "$(cat node_modules/.fedmarket-stamp 2>/dev/null)" != "$node_stamp" ]; then
  echo "setup: installing Node tools from package-lock.json"
  # Not `npm ci`: js-ipfs lists optional WebRTC transports whose installers download binaries
  # (one from a git host), which cannot be locked or fetched here. They are left out, and the
  # committed lock file is used as it is, never rewritten.
  npm install --omit=optional --no-save --no-audit --no-fund --loglevel=error
  echo "$node_stamp" > node_modules/.fedmarket-stamp
fi

# `setup.sh bench` adds what only the benchmarks use: Flower, called as an independent peer
# aggregator. Installed without its pins, which would downgrade rich, typer and fastapi; the four
# packages its aggregation functions import come explicitly.
if [ "${1:-}" = "bench" ] && [ ! -f "$STAMP_DIR/bench" ]; then
  echo "setup: installing benchmark extras (flwr)"
  "$VENV/bin/python" -m pip install -q --no-deps "flwr==1.42.0"
  "$VENV/bin/python" -m pip install -q "protobuf>=5,<7" "grpcio>=1.70" "iterators>=0.0.2" "cryptography>=44"
  touch "$STAMP_DIR/bench"
fi
