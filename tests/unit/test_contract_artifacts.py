"""The committed contract artifacts are exactly what the committed sources compile to."""

from __future__ import annotations

import json

from marketplace.chain.compiler import compile_contracts
from marketplace.chain.revert import decode_revert, error_selectors
from marketplace.paths import ARTIFACTS_DIR


def test_artifacts_are_fresh() -> None:
    compiled = compile_contracts()
    assert compiled, "no contract compiled"
    for name, artifact in compiled.items():
        path = ARTIFACTS_DIR / f"{name}.json"
        assert path.exists(), f"{path} missing: run `make contracts`"
        committed = json.loads(path.read_text())
        assert committed["bytecode"] == artifact["bytecode"], f"{name} bytecode is stale: run `make contracts`"
        assert committed == artifact, f"{name} artifact is stale: run `make contracts`"


def test_every_custom_error_decodes() -> None:
    abi = json.loads((ARTIFACTS_DIR / "Marketplace.json").read_text())["abi"]
    table = error_selectors(abi)
    assert len(table) == sum(1 for entry in abi if entry["type"] == "error")
    selector = next(s for s, e in table.items() if e["name"] == "WrongStake")
    error = decode_revert(selector + (5).to_bytes(32, "big") + (3).to_bytes(32, "big"), abi)
    assert (error.error_name, error.error_args) == ("WrongStake", {"expected": 5, "sent": 3})
    assert decode_revert(b"\xde\xad\xbe\xef", abi).error_name == "Unknown"
