"""Where the project's own files and local tools live, resolved from the source tree."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = PROJECT_ROOT / "contracts"
ARTIFACTS_DIR = CONTRACTS_DIR / "out"
NODE_BIN = PROJECT_ROOT / "node_modules" / ".bin"
ANVIL_BIN = PROJECT_ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
JSIPFS_BIN = NODE_BIN / "jsipfs"
