"""Loads the committed contract artifacts (ABI + bytecode) built by scripts/build_contracts.py."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from marketplace.errors import ToolchainError
from marketplace.paths import ARTIFACTS_DIR


@cache
def load_artifact(name: str) -> dict[str, Any]:
    """The artifact of contract `name`; raises ToolchainError if it was never built."""
    path = ARTIFACTS_DIR / f"{name}.json"
    if not path.exists():
        raise ToolchainError(f"no artifact for contract {name} at {path}", hint="run `make contracts`")
    return json.loads(path.read_text())
