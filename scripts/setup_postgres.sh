#!/usr/bin/env bash
# Install Debian's PostgreSQL server for the indexer's PostgreSQL test, once. Idempotent: does nothing
# when a server binary exists. The test starts its own throwaway cluster on a loopback port.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "cannot install postgresql: not root and no sudo" >&2; exit 1; fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends postgresql
