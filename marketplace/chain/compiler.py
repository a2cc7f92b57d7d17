"""Compiles the Solidity sources with solcjs (standard JSON) into deployable artifacts.

solcjs comes from the npm registry, so a fresh machine can compile without downloading a
native compiler; the artifacts are committed so users never need it.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from marketplace.errors import ToolchainError
from marketplace.paths import ARTIFACTS_DIR, CONTRACTS_DIR, PROJECT_ROOT

SOURCES_DIR = CONTRACTS_DIR / "src"
NODE_MODULES = PROJECT_ROOT / "node_modules"
OPTIMIZER_RUNS = 200
EVM_VERSION = "cancun"
DRIVER = PROJECT_ROOT / "scripts" / "solc_standard_json.js"


def source_files() -> list[Path]:
    """Every Solidity source of the project, in a stable order."""
    return sorted(SOURCES_DIR.rglob("*.sol"))


def _standard_json_input() -> dict[str, Any]:
    sources = {
        f"src/{path.relative_to(SOURCES_DIR).as_posix()}": {"content": path.read_text()}
        for path in source_files()
    }
    return {
        "language": "Solidity",
        "sources": sources,
        "settings": {
            "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
            "evmVersion": EVM_VERSION,
            "viaIR": False,
            "outputSelection": {
                "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "metadata"]}
            },
        },
    }


def _run_solcjs(payload: dict[str, Any]) -> dict[str, Any]:
    if not (NODE_MODULES / "solc").exists():
        raise ToolchainError("solcjs is not installed", hint="run `make setup` to install the Node tools")
    with tempfile.TemporaryDirectory(prefix="fedmarket-solc-") as tmp:
        input_path, output_path = Path(tmp) / "input.json", Path(tmp) / "output.json"
        input_path.write_text(json.dumps(payload))
        proc = subprocess.run(
            ["node", str(DRIVER), str(input_path), str(output_path), str(CONTRACTS_DIR), str(NODE_MODULES)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0 or not output_path.exists():
            raise ToolchainError(f"solcjs failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
        return json.loads(output_path.read_text())


def compile_contracts() -> dict[str, dict[str, Any]]:
    """Compile all sources; returns artifacts keyed by contract name. Raises on any compiler error."""
    output = _run_solcjs(_standard_json_input())
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise ToolchainError("Solidity compilation failed:\n" + "\n".join(e["formattedMessage"] for e in errors))
    artifacts: dict[str, dict[str, Any]] = {}
    for source_name, contracts in output["contracts"].items():
        if not source_name.startswith("src/"):
            continue  # library sources are compiled in, not deployed
        for name, data in contracts.items():
            bytecode = data["evm"]["bytecode"]["object"]
            if not bytecode or not data["abi"]:
                continue  # interfaces, abstract contracts and internal-only libraries
            metadata = json.loads(data["metadata"])
            artifacts[name] = {
                "contractName": name,
                "sourceName": source_name,
                "compiler": metadata["compiler"]["version"],
                "abi": data["abi"],
                "bytecode": "0x" + bytecode,
                "deployedBytecode": "0x" + data["evm"]["deployedBytecode"]["object"],
                "sourceHash": hashlib.sha256(Path(CONTRACTS_DIR / source_name).read_bytes()).hexdigest(),
            }
    return artifacts


def write_artifacts(artifacts: dict[str, dict[str, Any]], out_dir: Path = ARTIFACTS_DIR) -> list[Path]:
    """Write one JSON file per contract; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, artifact in sorted(artifacts.items()):
        path = out_dir / f"{name}.json"
        path.write_text(json.dumps(artifact, indent=1, sort_keys=True) + "\n")
        written.append(path)
    return written
